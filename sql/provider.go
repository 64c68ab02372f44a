package sql

import (
	"errors"
	"slices"
	"strings"

	gms "github.com/dolthub/go-mysql-server/sql"

	"github.com/lakehoused/lakehoused/catalog"
)

// Provider gives GMS the catalog's databases plus lakehoused's procedures and table
// functions.
type Provider struct {
	engine *Engine
	procs  *gms.ExternalStoredProcedureRegistry
	funcs  map[string]gms.TableFunction
	scalar map[string]gms.Function
}

var (
	_ gms.MutableDatabaseProvider         = (*Provider)(nil)
	_ gms.ExternalStoredProcedureProvider = (*Provider)(nil)
	_ gms.TableFunctionProvider           = (*Provider)(nil)
	_ gms.FunctionProvider                = (*Provider)(nil)
)

func newProvider(e *Engine) *Provider {
	p := &Provider{engine: e, funcs: map[string]gms.TableFunction{}, scalar: map[string]gms.Function{}}
	reg := gms.NewExternalStoredProcedureRegistry()
	for _, d := range slices.Concat(procedures(e), maintenanceProcedures(e), copyProcedures(e), connectionProcedures(e), mlProcedures(e), mlTrainProcedures(e), clusterProcedures(e)) {
		reg.Register(d)
	}
	p.procs = &reg
	for _, f := range slices.Concat(tableFunctions(e), sourceFunctions(e), fileSourceFunctions(e), mlTableFunctions(e)) {
		p.funcs[strings.ToLower(f.Name())] = f
	}
	for _, f := range mlFunctions(e) {
		p.scalar[strings.ToLower(f.FunctionName())] = f
	}
	return p
}

func (p *Provider) Database(_ *gms.Context, name string) (gms.Database, error) {
	if name == "" {
		// GMS asks for the current database even for qualified names (DELETE FROM db.t
		// without USE, on its way to turning it into TRUNCATE); no database has no tables.
		return noDatabase{}, nil
	}
	canon, ok := p.engine.cfg.Catalog.Database(name)
	if !ok {
		return nil, gms.ErrDatabaseNotFound.New(name)
	}
	return &Database{engine: p.engine, name: canon}, nil
}

func (p *Provider) HasDatabase(_ *gms.Context, name string) bool {
	_, ok := p.engine.cfg.Catalog.Database(name)
	return ok
}

func (p *Provider) AllDatabases(*gms.Context) []gms.Database {
	names := p.engine.cfg.Catalog.Databases()
	out := make([]gms.Database, len(names))
	for i, n := range names {
		out[i] = &Database{engine: p.engine, name: n}
	}
	return out
}

func (p *Provider) CreateDatabase(ctx *gms.Context, name string) error {
	if strings.EqualFold(name, "information_schema") || strings.EqualFold(name, "mysql") {
		return gms.ErrDatabaseExists.New(name)
	}
	return catalogError(p.engine.cfg.Catalog.CreateDatabase(ctx, name))
}

func (p *Provider) DropDatabase(ctx *gms.Context, name string) error {
	err := p.engine.cfg.Catalog.DropDatabase(ctx, name)
	if errors.Is(err, catalog.ErrDatabaseNotFound) {
		return gms.ErrDatabaseNotFound.New(name)
	}
	return err
}

func (p *Provider) ExternalStoredProcedure(_ *gms.Context, name string, numOfParams int) (*gms.ExternalStoredProcedureDetails, error) {
	return p.procs.LookupByNameAndParamCount(name, numOfParams)
}

func (p *Provider) ExternalStoredProcedures(_ *gms.Context, name string) ([]gms.ExternalStoredProcedureDetails, error) {
	return p.procs.LookupByName(name)
}

func (p *Provider) TableFunction(_ *gms.Context, name string) (gms.TableFunction, bool) {
	f, ok := p.funcs[strings.ToLower(name)]
	return f, ok
}

// Function gives GMS lakehoused's scalar functions (ml_predict).
func (p *Provider) Function(_ *gms.Context, name string) (gms.Function, bool) {
	f, ok := p.scalar[strings.ToLower(name)]
	return f, ok
}

func (p *Provider) WithTableFunctions(fns ...gms.TableFunction) (gms.TableFunctionProvider, error) {
	np := *p
	np.funcs = map[string]gms.TableFunction{}
	for k, v := range p.funcs {
		np.funcs[k] = v
	}
	for _, f := range fns {
		np.funcs[strings.ToLower(f.Name())] = f
	}
	return &np, nil
}

// noDatabase answers for the empty database name: it exists for GMS's lookups only and
// holds no tables (HasDatabase("") stays false).
type noDatabase struct{}

func (noDatabase) Name() string { return "" }
func (noDatabase) GetTableInsensitive(*gms.Context, string) (gms.Table, bool, error) {
	return nil, false, nil
}
func (noDatabase) GetTableNames(*gms.Context) ([]string, error) { return nil, nil }
