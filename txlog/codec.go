package txlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// logDir is the folder of the Delta log below the table root.
const logDir = "_delta_log/"

// commitKey is the store key of commit file v.
func commitKey(v int64) string { return fmt.Sprintf("%s%020d.json", logDir, v) }

// CommitKey is the key of version v's commit file in a table's store.
func CommitKey(v int64) string { return commitKey(v) }

// CommitVersion is the version whose commit file key is, or false for any other key.
func CommitVersion(key string) (int64, bool) {
	kind, v, _, _ := parseLogName(key)
	return v, kind == "commit" && v >= 0
}

// lastCheckpointKey names the pointer to the newest checkpoint.
const lastCheckpointKey = logDir + "_last_checkpoint"

// ParseActions decodes one commit file: newline-delimited JSON actions. Blank lines and
// unknown actions are skipped and unknown fields ignored, as the protocol requires. A line
// that is not JSON is an error wrapping ErrCorruptLog that names the file and line, because
// skipping it could silently drop an add or remove.
func ParseActions(name string, data []byte) ([]Action, error) {
	var out []Action
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var a Action
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %v", ErrCorruptLog, name, line, err)
		}
		if a == (Action{}) {
			continue // an action this version does not know (cdc, checkpointMetadata, …)
		}
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptLog, name, err)
	}
	return out, nil
}

// EncodeActions writes actions as a commit file. Maps and lists the protocol marks as
// required are written as {} / [] rather than null, because Spark rejects nulls there.
func EncodeActions(actions []Action) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range actions {
		a := normalizeAction(actions[i])
		if err := enc.Encode(a); err != nil { // Encode appends the newline
			return nil, fmt.Errorf("txlog: encode action %d: %w", i, err)
		}
	}
	return buf.Bytes(), nil
}

// normalizeAction returns a copy of a with nil required maps replaced by empty ones.
func normalizeAction(a Action) Action {
	if a.MetaData != nil {
		m := *a.MetaData
		if m.Configuration == nil {
			m.Configuration = map[string]string{}
		}
		if m.PartitionColumns == nil {
			m.PartitionColumns = []string{}
		}
		if m.Format.Provider == "" {
			m.Format.Provider = "parquet"
		}
		if m.Format.Options == nil {
			m.Format.Options = map[string]string{}
		}
		a.MetaData = &m
	}
	if a.Add != nil && a.Add.PartitionValues == nil {
		add := *a.Add
		add.PartitionValues = map[string]string{}
		a.Add = &add
	}
	return a
}

// fileKey identifies a logical file for reconciliation: the URL-decoded path plus the
// deletion vector's unique id. Decoding makes "a%20b.parquet" in an add match "a b.parquet"
// written unencoded by another engine's remove.
func fileKey(path string, dv *DeletionVector) string {
	k := DecodePath(path)
	if dv != nil {
		k += "#" + dv.UniqueID()
	}
	return k
}

// DecodePath turns the URI in add.path / remove.path into a store key or absolute path
// (%xx decoded). A path that is not valid percent-encoding is returned as is, since some
// writers put raw names in the log.
func DecodePath(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	d, err := url.PathUnescape(p)
	if err != nil {
		return p
	}
	return d
}

// UniqueID is the protocol's deletion vector id: storageType + pathOrInlineDv [+ "@" offset].
func (dv *DeletionVector) UniqueID() string {
	id := dv.StorageType + dv.PathOrInlineDv
	if dv.Offset != nil {
		id += "@" + strconv.Itoa(int(*dv.Offset))
	}
	return id
}
