// Package ml is the pure-compute core of training and model search in SQL: a column frame,
// preprocessing fitted as part of the model, the estimators named in SQL (logistic_regression,
// random_forest, gbdt, …), metrics, cross-validation and a versioned model format. It does no
// I/O and knows nothing of tables; the SQL procedures feed it frames and store its bytes.
// Hyper-parameter search (spaces, samplers, pruning, the study runner) lives in ml/search.
package ml
