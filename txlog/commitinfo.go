package txlog

import (
	"encoding/json"
	"strconv"
)

// UnmarshalJSON decodes a commitInfo leniently. commitInfo is free-form provenance and
// other writers disagree on its types (delta-rs writes numeric operationMetrics, some
// writers a string readVersion), so a field of an unexpected type is converted or dropped
// instead of making the whole commit unreadable.
func (c *CommitInfo) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = CommitInfo{}
	c.Timestamp, _ = lenientInt(raw["timestamp"])
	json.Unmarshal(raw["operation"], &c.Operation)
	json.Unmarshal(raw["operationParameters"], &c.OperationParameters)
	if v, ok := lenientInt(raw["readVersion"]); ok {
		c.ReadVersion = &v
	}
	json.Unmarshal(raw["isolationLevel"], &c.IsolationLevel)
	var blind bool
	if err := json.Unmarshal(raw["isBlindAppend"], &blind); err == nil && raw["isBlindAppend"] != nil {
		c.IsBlindAppend = &blind
	}
	if m := raw["operationMetrics"]; m != nil {
		var metrics map[string]any
		if json.Unmarshal(m, &metrics) == nil && metrics != nil {
			c.OperationMetrics = make(map[string]string, len(metrics))
			for k, v := range metrics {
				if s, ok := v.(string); ok {
					c.OperationMetrics[k] = s
				} else if v != nil {
					vb, _ := json.Marshal(v)
					c.OperationMetrics[k] = string(vb)
				}
			}
		}
	}
	json.Unmarshal(raw["userName"], &c.UserName)
	json.Unmarshal(raw["engineInfo"], &c.EngineInfo)
	json.Unmarshal(raw["txnId"], &c.TxnID)
	if v, ok := lenientInt(raw["inCommitTimestamp"]); ok {
		c.InCommitTimestamp = &v
	}
	return nil
}

// lenientInt reads an integer written as a JSON number or a numeric string.
func lenientInt(b json.RawMessage) (int64, bool) {
	if len(b) == 0 || string(b) == "null" {
		return 0, false
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return 0, false
		}
		n = json.Number(s)
	}
	if v, err := n.Int64(); err == nil {
		return v, true
	}
	if f, err := strconv.ParseFloat(string(n), 64); err == nil {
		return int64(f), true
	}
	return 0, false
}
