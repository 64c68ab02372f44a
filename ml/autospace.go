package ml

import "fmt"

// AutoSpace is the search space ml_search uses when the caller asks for 'auto': every
// algorithm of the task that is cheap enough to cross-validate many times on SELECT-sized
// data, each with the scaler choice (scaling decides k-NN and the linear models) and the
// hyper-parameters that move their scores most. With the baselines a search tries first
// (each algorithm at its defaults under each scaler), a short search already covers the
// reference models of shared/testdata/ml.
func AutoSpace(task Task) ([]byte, error) {
	switch task {
	case Classification:
		return []byte(`{
	"algorithm": ["logistic_regression", "naive_bayes", "knn", "random_forest", "gbdt"],
	"scaler": ["none", "standard"],
	"logistic_regression": {"C": {"log_float": [0.01, 100]}},
	"knn": {"n_neighbors": {"int": [1, 15]}, "weights": ["uniform", "distance"]},
	"random_forest": {"n_estimators": {"int": [50, 200]}, "max_features": ["sqrt", "log2"]},
	"gbdt": {"learning_rate": {"log_float": [0.03, 0.3]}, "max_leaf_nodes": {"int": [8, 31]}}}`), nil
	case Regression:
		return []byte(`{
	"algorithm": ["linear_regression", "ridge", "lasso", "random_forest", "gbdt", "knn"],
	"scaler": ["none", "standard"],
	"ridge": {"alpha": {"log_float": [0.001, 100]}},
	"lasso": {"alpha": {"log_float": [0.001, 10]}},
	"random_forest": {"n_estimators": {"int": [50, 200]}, "min_samples_leaf": {"int": [1, 10]}},
	"gbdt": {"learning_rate": {"log_float": [0.01, 0.3]}, "max_depth": {"int": [2, 5]}, "min_samples_leaf": {"int": [1, 20]}},
	"knn": {"n_neighbors": {"int": [3, 30]}}}`), nil
	case Clustering:
		return []byte(`{"algorithm": ["kmeans"], "scaler": ["none", "standard"], "kmeans": {"n_clusters": {"int": [2, 10]}}}`), nil
	}
	return nil, fmt.Errorf("ml: no automatic space for task %q; tasks are: classification, regression, clustering", task)
}
