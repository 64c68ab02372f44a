package txlog

import "encoding/json"

// Schema is the Delta schema JSON (schemaString of metaData): a struct of fields.
type Schema struct {
	Type   string        `json:"type"` // always "struct"
	Fields []StructField `json:"fields"`
}

// StructField is one column (or nested field).
type StructField struct {
	Name     string         `json:"name"`
	Type     DataType       `json:"type"`
	Nullable bool           `json:"nullable"`
	Metadata map[string]any `json:"metadata"`
}

// DataType is either a primitive type name ("long", "decimal(10,2)", …) held in Name, or a
// nested type (struct, array, map) held in the matching pointer.
type DataType struct {
	Name   string     // primitive type name; empty for nested types
	Struct *Schema    // {"type":"struct",…}
	Array  *ArrayType // {"type":"array",…}
	Map    *MapType   // {"type":"map",…}
}

// ArrayType is {"type":"array","elementType":…,"containsNull":…}.
type ArrayType struct {
	ElementType  DataType `json:"elementType"`
	ContainsNull bool     `json:"containsNull"`
}

// MapType is {"type":"map","keyType":…,"valueType":…,"valueContainsNull":…}.
type MapType struct {
	KeyType           DataType `json:"keyType"`
	ValueType         DataType `json:"valueType"`
	ValueContainsNull bool     `json:"valueContainsNull"`
}

// MarshalJSON writes a primitive as a JSON string and a nested type as an object.
func (d DataType) MarshalJSON() ([]byte, error) {
	switch {
	case d.Struct != nil:
		return json.Marshal(Schema{Type: "struct", Fields: d.Struct.Fields})
	case d.Array != nil:
		return json.Marshal(struct {
			Type string `json:"type"`
			ArrayType
		}{"array", *d.Array})
	case d.Map != nil:
		return json.Marshal(struct {
			Type string `json:"type"`
			MapType
		}{"map", *d.Map})
	}
	return json.Marshal(d.Name)
}

// UnmarshalJSON reads either form.
func (d *DataType) UnmarshalJSON(b []byte) error {
	*d = DataType{}
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &d.Name)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	switch head.Type {
	case "struct":
		d.Struct = new(Schema)
		return json.Unmarshal(b, d.Struct)
	case "array":
		d.Array = new(ArrayType)
		return json.Unmarshal(b, d.Array)
	case "map":
		d.Map = new(MapType)
		return json.Unmarshal(b, d.Map)
	}
	d.Name = head.Type
	return nil
}

// ParseSchema decodes a metaData.schemaString.
func ParseSchema(s string) (*Schema, error) {
	var sc Schema
	if err := json.Unmarshal([]byte(s), &sc); err != nil {
		return nil, err
	}
	return &sc, nil
}

// String encodes the schema as a schemaString.
func (s *Schema) String() string {
	b, _ := json.Marshal(Schema{Type: "struct", Fields: s.Fields})
	return string(b)
}

// MarshalJSON writes "metadata":{} when Metadata is nil: Spark rejects a schemaString whose
// field lacks the metadata object.
func (f StructField) MarshalJSON() ([]byte, error) {
	type plain StructField // no methods: avoids recursion
	p := plain(f)
	if p.Metadata == nil {
		p.Metadata = map[string]any{}
	}
	return json.Marshal(p)
}
