package sql

import (
	"fmt"
	"strings"
	"sync"

	gms "github.com/dolthub/go-mysql-server/sql"
	"github.com/dolthub/go-mysql-server/sql/planbuilder"
	"github.com/dolthub/go-mysql-server/sql/types"
	"github.com/dolthub/vitess/go/sqltypes"

	"github.com/lakehoused/lakehoused/txlog"
)

// Column metadata keys lakehoused writes into the Delta schema. Other engines ignore them;
// they let SHOW CREATE TABLE give back what the user declared.
const (
	metaMySQLType = "lakehoused.mysql.type"     // e.g. "varchar(20)", "int unsigned", "json"
	metaDefault   = "lakehoused.mysql.default"  // default expression as written
	metaOnUpdate  = "lakehoused.mysql.onUpdate" // ON UPDATE expression as written
	metaComment   = "comment"                   // Spark's key for column comments
	metaJSON      = "lakehoused.json"           // string column holding JSON
	metaMaxLength = "lakehoused.maxLength"      // declared character length, enforced on write
)

// Table properties lakehoused keeps in metaData.configuration.
const (
	propPrimaryKey = "lakehoused.primaryKey" // comma-separated key column names
	propComment    = "lakehoused.comment"
)

// deltaField maps one MySQL column to a Delta field. The mapping follows the table:
// unsigned types widen so every value fits a signed Delta type.
func deltaField(c *gms.Column) (txlog.StructField, error) {
	f := txlog.StructField{Name: c.Name, Nullable: c.Nullable, Metadata: map[string]any{}}
	t := c.Type
	f.Metadata[metaMySQLType] = mysqlTypeString(t)
	if c.Default != nil {
		f.Metadata[metaDefault] = c.Default.String()
	}
	if c.OnUpdate != nil {
		f.Metadata[metaOnUpdate] = c.OnUpdate.String()
	}
	if c.Comment != "" {
		f.Metadata[metaComment] = c.Comment
	}
	name, err := deltaTypeName(t)
	if err != nil {
		return f, fmt.Errorf("column %q: %w", c.Name, err)
	}
	f.Type = txlog.DataType{Name: name}
	if types.IsJSON(t) {
		f.Metadata[metaJSON] = true
	}
	if st, ok := t.(gms.StringType); ok && types.IsText(t) && !types.IsEnum(t) && !types.IsSet(t) {
		if n := st.MaxCharacterLength(); n > 0 && n < types.LongTextBlobMax {
			f.Metadata[metaMaxLength] = n
		}
	}
	return f, nil
}

func deltaTypeName(t gms.Type) (string, error) {
	switch t.Type() {
	case sqltypes.Int8:
		if isBoolean(t) {
			return "boolean", nil
		}
		return "byte", nil
	case sqltypes.Uint8, sqltypes.Int16:
		return "short", nil
	case sqltypes.Uint16, sqltypes.Int24, sqltypes.Int32, sqltypes.Uint24:
		return "integer", nil
	case sqltypes.Uint32, sqltypes.Int64:
		return "long", nil
	case sqltypes.Uint64:
		return "decimal(20,0)", nil
	case sqltypes.Float32:
		return "float", nil
	case sqltypes.Float64:
		return "double", nil
	case sqltypes.Decimal:
		dt := t.(gms.DecimalType)
		if dt.Precision() > 38 {
			return "", fmt.Errorf("DECIMAL(%d,%d) has more than the 38 digits Delta (and Parquet's decimals) can hold; CAST it to DECIMAL(38,%d) or to a string", dt.Precision(), dt.Scale(), min(dt.Scale(), 38))
		}
		return fmt.Sprintf("decimal(%d,%d)", dt.Precision(), dt.Scale()), nil
	case sqltypes.Char, sqltypes.VarChar, sqltypes.Text, sqltypes.Enum, sqltypes.Set, sqltypes.TypeJSON:
		return "string", nil
	case sqltypes.Binary, sqltypes.VarBinary, sqltypes.Blob:
		return "binary", nil
	case sqltypes.Date:
		return "date", nil
	case sqltypes.Datetime, sqltypes.Timestamp:
		return "timestamp", nil
	case sqltypes.Year:
		return "short", nil
	case sqltypes.Time:
		// Delta has no time of day: the value is kept as its text ('-838:59:59.000000' …
		// '838:59:59.000000'), the column's MySQL type in the metadata.
		return "string", nil
	}
	return "", fmt.Errorf("type %s is not supported yet; use one of the types listed in the README", t.String())
}

func isBoolean(t gms.Type) bool {
	return t.Type() == sqltypes.Int8 && strings.HasPrefix(strings.ToLower(t.String()), "tinyint(1)")
}

// mysqlTypeString is the type as it would be declared, without collation noise.
func mysqlTypeString(t gms.Type) string {
	s := t.String()
	if i := strings.Index(strings.ToUpper(s), " COLLATE "); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(strings.ToUpper(s), " CHARACTER SET "); i >= 0 {
		s = s[:i]
	}
	return s
}

// gmsColumns turns a Delta schema into GMS columns. Columns lakehoused wrote come back with
// their declared MySQL type; columns written by other engines get the closest MySQL type,
// and nested types are shown as JSON so attached tables stay queryable.
func gmsColumns(ctx *gms.Context, tableName string, sc *txlog.Schema, pk []string) (gms.PrimaryKeySchema, error) {
	cols := make(gms.Schema, 0, len(sc.Fields))
	var ords []int
	for i, f := range sc.Fields {
		t, err := gmsType(f)
		if err != nil {
			return gms.PrimaryKeySchema{}, fmt.Errorf("table %s column %q: %w", tableName, f.Name, err)
		}
		c := &gms.Column{Name: f.Name, Type: t, Nullable: f.Nullable, Source: tableName}
		if s, ok := f.Metadata[metaComment].(string); ok {
			c.Comment = s
		}
		if s, ok := f.Metadata[metaDefault].(string); ok && s != "" {
			d, err := storedDefault(ctx, s, t, f.Nullable)
			if err != nil {
				return gms.PrimaryKeySchema{}, fmt.Errorf("table %s column %q: stored default %q: %w", tableName, f.Name, s, err)
			}
			c.Default = d
		}
		if s, ok := f.Metadata[metaOnUpdate].(string); ok && s != "" {
			c.OnUpdate = gms.NewUnresolvedColumnDefaultValue(s)
		}
		for _, k := range pk {
			if strings.EqualFold(k, f.Name) {
				c.PrimaryKey = true
				c.Nullable = false
				ords = append(ords, i)
			}
		}
		cols = append(cols, c)
	}
	// PkOrdinals follow key order, not schema order.
	ordered := make([]int, 0, len(ords))
	for _, k := range pk {
		for _, o := range ords {
			if strings.EqualFold(cols[o].Name, k) {
				ordered = append(ordered, o)
			}
		}
	}
	return gms.NewPrimaryKeySchema(cols, ordered...), nil
}

// storedDefault turns a default saved as text back into the engine's form. A literal is
// typed like the column, as the engine does with defaults it analysed itself. Any other
// expression (CURRENT_TIMESTAMP, (a + 1), UUID()) is handed over unresolved: the engine
// resolves such defaults in every INSERT and UPDATE plan, with functions and columns in
// scope. (GMS v0.20.0's StringToColumnDefaultValue cannot parse them back: it formats the
// parsed function node with %s.)
func storedDefault(ctx *gms.Context, s string, t gms.Type, nullable bool) (*gms.ColumnDefaultValue, error) {
	d, err := planbuilder.StringToColumnDefaultValue(ctx, s)
	if err == nil && d.IsLiteral() {
		return gms.NewColumnDefaultValue(d.Expr, t, true, d.IsParenthesized(), nullable)
	}
	return gms.NewUnresolvedColumnDefaultValue(s), nil
}

// parsedTypes caches MySQL column type strings parsed by the engine's SQL parser, which
// every statement needs for every column of every table it names. Types are immutable
// values. The cache is bounded (ENUM and SET types make the set of strings open-ended):
// when full it starts over.
var parsedTypes = typeCache{m: map[string]gms.Type{}}

const typeCacheSize = 4096

type typeCache struct {
	mu sync.RWMutex
	m  map[string]gms.Type
}

func (c *typeCache) get(s string) (gms.Type, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.m[s]
	return t, ok
}

func (c *typeCache) put(s string, t gms.Type) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= typeCacheSize {
		c.m = map[string]gms.Type{}
	}
	c.m[s] = t
}

func gmsType(f txlog.StructField) (gms.Type, error) {
	if s, ok := f.Metadata[metaMySQLType].(string); ok && s != "" {
		if t, ok := parsedTypes.get(s); ok {
			return t, nil
		}
		t, err := planbuilder.ParseColumnTypeString(s)
		if err == nil {
			// A parsed "varchar(20)" has no collation, and GMS's LIKE is false for every row
			// of a column without one: give it the default, as CREATE TABLE does.
			if tc, ok := t.(gms.TypeWithCollation); ok && tc.Collation() == gms.Collation_Unspecified {
				if ct, cerr := tc.WithNewCollation(gms.Collation_Default); cerr == nil {
					t = ct
				}
			}
			parsedTypes.put(s, t)
			return t, nil
		}
	}
	if f.Type.Name == "" {
		return types.JSON, nil // struct, array, map
	}
	name := f.Type.Name
	switch name {
	case "boolean":
		return types.Boolean, nil
	case "byte":
		return types.Int8, nil
	case "short":
		return types.Int16, nil
	case "integer":
		return types.Int32, nil
	case "long":
		return types.Int64, nil
	case "float":
		return types.Float32, nil
	case "double":
		return types.Float64, nil
	case "string":
		if f.Metadata[metaJSON] == true {
			return types.JSON, nil
		}
		return types.LongText, nil
	case "binary":
		return types.LongBlob, nil
	case "date":
		return types.Date, nil
	case "timestamp", "timestamp_ntz":
		return types.DatetimeMaxPrecision, nil
	}
	var p, s int
	if _, err := fmt.Sscanf(strings.ReplaceAll(name, " ", ""), "decimal(%d,%d)", &p, &s); err == nil {
		return types.CreateDecimalType(uint8(p), uint8(s))
	}
	return nil, fmt.Errorf("the Delta type %q is not supported", name)
}
