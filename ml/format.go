package ml

import (
	"encoding/json"
	"fmt"
)

// The model file is one JSON document:
//
//	{"format": "lakehoused-ml-model", "version": 1,
//	 "algorithm": "random_forest", "task": "classification",
//	 "label": "species", "label_kind": "string", "classes": ["setosa", …],
//	 "features": [{"name": "sepal_length", "kind": "numeric"}, …],
//	 "hyperparameters": {"n_estimators": 100, …}, "scaler": "none", "imputer": "mean", "seed": 0,
//	 "preprocessing": {"columns": [{"name", "kind", "fill", "center", "scale",
//	                               "fill_string", "categories"}, …]},
//	 "estimator": {…}}
//
// "estimator" holds the fitted parameters; its shape is the algorithm's (weights for linear
// models, flattened trees for tree models, training rows for knn). JSON rather than a binary
// encoding because a model is written once and read rarely, a person can inspect it, and Go's
// float formatting round-trips every float64 exactly. Any change that an older reader would
// misread bumps FormatVersion; readers refuse versions they do not know.

// FormatVersion is the version of the model file this package writes and reads.
const FormatVersion = 1

const formatName = "lakehoused-ml-model"

type featureJSON struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
}

type modelFile struct {
	Format          string          `json:"format"`
	Version         int             `json:"version"`
	Algorithm       string          `json:"algorithm"`
	Task            Task            `json:"task"`
	Label           string          `json:"label,omitempty"`
	LabelKind       Kind            `json:"label_kind,omitempty"`
	Classes         []string        `json:"classes,omitempty"`
	Features        []featureJSON   `json:"features"`
	Hyperparameters map[string]any  `json:"hyperparameters"`
	Scaler          string          `json:"scaler"`
	Imputer         string          `json:"imputer"`
	Seed            uint64          `json:"seed"`
	Preprocessing   *preprocessor   `json:"preprocessing"`
	Estimator       json.RawMessage `json:"estimator"`
}

// Marshal encodes the model in the versioned model format.
func (m *Model) Marshal() ([]byte, error) {
	est, err := json.Marshal(m.est)
	if err != nil {
		return nil, fmt.Errorf("ml: save %s model: %w", m.Algorithm, err)
	}
	mf := modelFile{Format: formatName, Version: FormatVersion, Algorithm: m.Algorithm, Task: m.Task, Label: m.Label,
		LabelKind: m.LabelKind, Classes: m.Classes, Hyperparameters: m.Params, Scaler: m.Scaler, Imputer: m.Imputer,
		Seed: m.Seed, Preprocessing: m.prep, Estimator: est}
	for _, c := range m.prep.Columns {
		mf.Features = append(mf.Features, featureJSON{c.Name, c.Kind})
	}
	b, err := json.Marshal(mf)
	if err != nil {
		return nil, fmt.Errorf("ml: save %s model: %w", m.Algorithm, err)
	}
	return b, nil
}

// Unmarshal decodes a model written by Marshal. A file of another format version is refused
// with an error saying which versions this build reads.
func Unmarshal(b []byte) (*Model, error) {
	var head struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("ml: load model: not a model file: %w", err)
	}
	if head.Format != formatName {
		return nil, fmt.Errorf("ml: load model: format is %q, want %q", head.Format, formatName)
	}
	if head.Version != FormatVersion {
		return nil, fmt.Errorf("ml: load model: format version %d is not supported; this build reads version %d (retrain the model, or load it with the build that wrote it)", head.Version, FormatVersion)
	}
	var mf modelFile
	if err := json.Unmarshal(b, &mf); err != nil {
		return nil, fmt.Errorf("ml: load model: %w", err)
	}
	alg, err := lookupAlgorithm(mf.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("ml: load model: %w", err)
	}
	h, err := alg.resolve(mf.Hyperparameters, mf.Task)
	if err != nil {
		return nil, fmt.Errorf("ml: load model: %w", err)
	}
	if mf.Preprocessing == nil || len(mf.Preprocessing.Columns) != len(mf.Features) {
		return nil, fmt.Errorf("ml: load model: preprocessing does not match the %d features", len(mf.Features))
	}
	mf.Preprocessing.init()
	est := alg.make(h, mf.Task)
	if err := json.Unmarshal(mf.Estimator, est); err != nil {
		return nil, fmt.Errorf("ml: load %s model: estimator: %w", mf.Algorithm, err)
	}
	if mf.Task == Classification && len(mf.Classes) < 2 {
		return nil, fmt.Errorf("ml: load model: classification model with %d classes", len(mf.Classes))
	}
	return &Model{Algorithm: mf.Algorithm, Task: mf.Task, Params: map[string]any(h), Scaler: mf.Scaler, Imputer: mf.Imputer,
		Seed: mf.Seed, Label: mf.Label, LabelKind: mf.LabelKind, Classes: mf.Classes, prep: mf.Preprocessing, est: est}, nil
}
