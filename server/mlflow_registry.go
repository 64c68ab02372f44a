package server

import (
	"fmt"
	"net/http"
	"strings"

	lakesql "github.com/lakehoused/lakehoused/sql"
)

// The model registry part of MLflow's REST API: registered models, their versions and
// aliases, over ml.registered_models, ml.model_versions and ml.model_aliases.

func (m *mlflowAPI) registryRoutes(mux *http.ServeMux, h func(string, func(*http.Request, map[string]any) (any, error))) {
	const p = "/api/2.0/mlflow/"
	h("POST "+p+"registered-models/create", m.createModel)
	h("GET "+p+"registered-models/get", m.getModel)
	h("GET "+p+"registered-models/search", m.searchModels)
	h("POST "+p+"registered-models/search", m.searchModels)
	h("POST "+p+"model-versions/create", m.createVersion)
	h("GET "+p+"model-versions/get", m.getVersion)
	h("GET "+p+"model-versions/search", m.searchVersions)
	h("POST "+p+"model-versions/search", m.searchVersions)
	h("POST "+p+"registered-models/alias", m.call("ml_set_alias", "name", "alias", "version"))
	h("DELETE "+p+"registered-models/alias", m.call("ml_delete_alias", "name", "alias"))
	h("GET "+p+"registered-models/alias", m.getByAlias)
}

const versionCols = "name, version, run_id, source, status, description, creation_time"

func versionJSON(x []any) map[string]any {
	out := map[string]any{"name": x[0], "version": fmt.Sprint(x[1]), "run_id": x[2], "source": x[3], "status": x[4],
		"creation_timestamp": x[6], "last_updated_timestamp": x[6], "current_stage": "None"}
	if x[5] != nil {
		out["description"] = x[5]
	}
	return out
}

func (m *mlflowAPI) model(r *http.Request, name string) (map[string]any, error) {
	q := lakesql.SQLString(name)
	_, rows, err := m.query(r, "SELECT name, description, creation_time, last_updated_time FROM ml.registered_models WHERE name = "+q)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("registered model with name=%s not found", name)}
	}
	x := rows[0]
	out := map[string]any{"name": x[0], "creation_timestamp": x[2], "last_updated_timestamp": x[3]}
	if x[1] != nil {
		out["description"] = x[1]
	}
	_, vrows, err := m.query(r, "SELECT "+versionCols+" FROM ml.model_versions WHERE name = "+q+" ORDER BY version DESC LIMIT 1")
	if err != nil {
		return nil, err
	}
	if len(vrows) > 0 {
		out["latest_versions"] = []any{versionJSON(vrows[0])}
	}
	_, arows, err := m.query(r, "SELECT alias, version FROM ml.model_aliases WHERE name = "+q+" ORDER BY alias")
	if err != nil {
		return nil, err
	}
	if len(arows) > 0 {
		aliases := make([]any, len(arows))
		for i, a := range arows {
			aliases[i] = map[string]any{"alias": a[0], "version": fmt.Sprint(a[1])}
		}
		out["aliases"] = aliases
	}
	return out, nil
}

func (m *mlflowAPI) createModel(r *http.Request, body map[string]any) (any, error) {
	name, err := str(body, "name")
	if err != nil {
		return nil, err
	}
	q := "CALL ml_create_model(" + lakesql.SQLString(name)
	if d := optStr(body, "description"); d != "" {
		q += ", " + lakesql.SQLString(d)
	}
	if _, _, err := m.query(r, q+")"); err != nil {
		return nil, err
	}
	out, err := m.model(r, name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": out}, nil
}

func (m *mlflowAPI) getModel(r *http.Request, body map[string]any) (any, error) {
	name, err := str(body, "name")
	if err != nil {
		return nil, err
	}
	if err := m.ensure(r); err != nil {
		return nil, err
	}
	out, err := m.model(r, name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"registered_model": out}, nil
}

// nameFilter reads the filters MLflow's registry search takes on names: name = 'x',
// name LIKE 'x%', name ILIKE 'x%' (and run_id = '…' for versions).
func nameFilter(filter string, allowRun bool) (string, error) {
	if strings.TrimSpace(filter) == "" {
		return "TRUE", nil
	}
	toks, err := lexFilter(filter)
	if err != nil {
		return "", badRequest("invalid filter %q: %v", filter, err)
	}
	if len(toks) != 3 || toks[0].kind != 'i' || toks[2].kind != 's' {
		return "", badRequest("invalid filter %q: use name = '…', name LIKE '…' or name ILIKE '…'%s", filter, map[bool]string{true: " (or run_id = '…')"}[allowRun])
	}
	col := strings.ToLower(toks[0].text)
	if col != "name" && !(allowRun && col == "run_id") {
		return "", badRequest("invalid filter %q: %q at character 1 is not a searchable field", filter, toks[0].text)
	}
	v := lakesql.SQLString(toks[2].text)
	switch strings.ToUpper(toks[1].text) {
	case "=":
		return col + " = " + v, nil
	case "LIKE":
		return col + " LIKE " + v, nil
	case "ILIKE":
		return "LOWER(" + col + ") LIKE LOWER(" + v + ")", nil
	}
	return "", badRequest("invalid filter %q: unsupported operator %q at character %d", filter, toks[1].text, toks[1].pos+1)
}

func (m *mlflowAPI) searchModels(r *http.Request, body map[string]any) (any, error) {
	where, err := nameFilter(optStr(body, "filter"), false)
	if err != nil {
		return nil, err
	}
	if err := m.ensure(r); err != nil {
		return nil, err
	}
	_, rows, err := m.query(r, "SELECT name FROM ml.registered_models WHERE "+where+" ORDER BY name")
	if err != nil {
		return nil, err
	}
	list := []any{}
	for _, x := range rows {
		mdl, err := m.model(r, fmt.Sprint(x[0]))
		if err != nil {
			return nil, err
		}
		list = append(list, mdl)
	}
	return map[string]any{"registered_models": list}, nil
}

func (m *mlflowAPI) createVersion(r *http.Request, body map[string]any) (any, error) {
	name, err := str(body, "name")
	if err != nil {
		return nil, err
	}
	source, err := str(body, "source")
	if err != nil {
		return nil, err
	}
	if err := m.ensure(r); err != nil {
		return nil, err
	}
	if _, err := m.model(r, name); err != nil {
		return nil, err
	}
	_, rows, err := m.query(r, fmt.Sprintf("CALL ml_register_model(%s, %s, %s)", lakesql.SQLString(name), lakesql.SQLString(optStr(body, "run_id")), lakesql.SQLString(source)))
	if err != nil {
		return nil, err
	}
	return m.versionResponse(r, name, fmt.Sprint(rows[0][1]))
}

func (m *mlflowAPI) versionResponse(r *http.Request, name, version string) (any, error) {
	_, rows, err := m.query(r, fmt.Sprintf("SELECT %s FROM ml.model_versions WHERE name = %s AND CAST(version AS CHAR) = %s", versionCols, lakesql.SQLString(name), lakesql.SQLString(version)))
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("model version (name=%s, version=%s) not found", name, version)}
	}
	v := versionJSON(rows[0])
	_, arows, err := m.query(r, fmt.Sprintf("SELECT alias FROM ml.model_aliases WHERE name = %s AND CAST(version AS CHAR) = %s ORDER BY alias", lakesql.SQLString(name), lakesql.SQLString(version)))
	if err != nil {
		return nil, err
	}
	if len(arows) > 0 {
		aliases := make([]any, len(arows))
		for i, a := range arows {
			aliases[i] = a[0]
		}
		v["aliases"] = aliases
	}
	return map[string]any{"model_version": v}, nil
}

func (m *mlflowAPI) getVersion(r *http.Request, body map[string]any) (any, error) {
	name, err := str(body, "name")
	if err != nil {
		return nil, err
	}
	version, err := str(body, "version")
	if err != nil {
		return nil, err
	}
	if err := m.ensure(r); err != nil {
		return nil, err
	}
	return m.versionResponse(r, name, version)
}

func (m *mlflowAPI) searchVersions(r *http.Request, body map[string]any) (any, error) {
	where, err := nameFilter(optStr(body, "filter"), true)
	if err != nil {
		return nil, err
	}
	if err := m.ensure(r); err != nil {
		return nil, err
	}
	_, rows, err := m.query(r, "SELECT "+versionCols+" FROM ml.model_versions WHERE "+where+" ORDER BY name, version DESC")
	if err != nil {
		return nil, err
	}
	list := []any{}
	for _, x := range rows {
		list = append(list, versionJSON(x))
	}
	return map[string]any{"model_versions": list}, nil
}

func (m *mlflowAPI) getByAlias(r *http.Request, body map[string]any) (any, error) {
	name, err := str(body, "name")
	if err != nil {
		return nil, err
	}
	alias, err := str(body, "alias")
	if err != nil {
		return nil, err
	}
	if err := m.ensure(r); err != nil {
		return nil, err
	}
	_, rows, err := m.query(r, fmt.Sprintf("SELECT version FROM ml.model_aliases WHERE name = %s AND alias = %s", lakesql.SQLString(name), lakesql.SQLString(alias)))
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, &mlflowError{http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", fmt.Sprintf("registered model %s has no alias %s", name, alias)}
	}
	return m.versionResponse(r, name, fmt.Sprint(rows[0][0]))
}
