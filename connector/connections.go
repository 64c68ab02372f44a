package connector

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Connections are named database URLs (CALL lake_connection_create), kept in the node's data
// directory. Passwords are encrypted at rest with AES-256-GCM under a key in the same
// directory (secret.key, mode 0600), so the connections file alone — a backup, a copy in a
// bug report — does not give them away; they are never shown back in clear.
type Connections struct {
	mu   sync.Mutex
	path string
	key  []byte
	m    map[string]storedConnection
}

type storedConnection struct {
	Kind    string    `json:"kind"`
	URL     string    `json:"url"`              // without the password
	Secret  string    `json:"secret,omitempty"` // base64(nonce || AES-GCM(password))
	Created time.Time `json:"created"`
}

// ConnectionInfo is a connection as listed: no secret.
type ConnectionInfo struct {
	Name, Kind, URL string // URL with the password shown as ***
	Created         time.Time
}

// ConnectionKinds are the kinds a connection may have.
var ConnectionKinds = []string{"mysql", "postgres"}

var connectionName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)

// OpenConnections loads the connections kept in dir, creating the key on first use.
func OpenConnections(dir string) (*Connections, error) {
	c := &Connections{path: filepath.Join(dir, "connections.json"), m: map[string]storedConnection{}}
	keyPath := filepath.Join(dir, "secret.key")
	key, err := os.ReadFile(keyPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := writeFileSync(keyPath, key, 0o600); err != nil {
			return nil, fmt.Errorf("connections: writing the key %s: %w", keyPath, err)
		}
	case err != nil:
		return nil, fmt.Errorf("connections: reading the key %s: %w", keyPath, err)
	case len(key) != 32:
		return nil, fmt.Errorf("connections: the key %s is damaged (%d bytes, want 32)", keyPath, len(key))
	}
	c.key = key
	data, err := os.ReadFile(c.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &c.m); err != nil {
			return nil, fmt.Errorf("connections: %s is damaged: %w", c.path, err)
		}
	}
	return c, nil
}

// Create stores a new connection; the name must be new.
func (c *Connections) Create(name, kind, rawURL string) error {
	if !connectionName.MatchString(name) {
		return fmt.Errorf("connection name %q: use letters, digits, '_', '.' or '-' (at most 64, starting with a letter)", name)
	}
	kind = strings.ToLower(strings.TrimSpace(kind))
	if kind == "postgresql" {
		kind = "postgres"
	}
	if kind != "mysql" && kind != "postgres" {
		return fmt.Errorf("connection kind %q: use one of %s", kind, strings.Join(ConnectionKinds, ", "))
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("connection %s: malformed URL %s; expected %s://user:password@host:port/db", name, RedactURL(rawURL), kind)
	}
	if strings.Contains(u.Path, "@") || strings.Contains(u.RawQuery, "@") || strings.Contains(u.Fragment, "@") {
		return fmt.Errorf("connection %s: the URL has an '@' after its host; percent-encode special characters in the password (/ is %%2F, @ is %%40)", name)
	}
	for k := range u.Query() {
		if strings.EqualFold(k, "password") {
			return fmt.Errorf("connection %s: put the password in the URL's user part (%s://user:password@host/db), not in a parameter, so that it is sealed", name, u.Scheme)
		}
	}
	if want := map[string][]string{"mysql": {"mysql"}, "postgres": {"postgres", "postgresql"}}[kind]; !contains(want, u.Scheme) {
		return fmt.Errorf("connection %s: a %s connection needs a %s:// URL, got %s://", name, kind, want[0], u.Scheme)
	}
	sc := storedConnection{Kind: kind, Created: time.Now().UTC()}
	if pw, ok := u.User.Password(); ok {
		sealed, err := c.seal(pw)
		if err != nil {
			return err
		}
		sc.Secret = sealed
		u.User = url.User(u.User.Username())
	}
	sc.URL = u.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[strings.ToLower(name)]; ok {
		return fmt.Errorf("connection %s already exists; drop it first with lake_connection_drop", name)
	}
	c.m[strings.ToLower(name)] = sc
	if err := c.save(); err != nil {
		delete(c.m, strings.ToLower(name))
		return err
	}
	return nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Drop removes a connection.
func (c *Connections) Drop(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc, ok := c.m[strings.ToLower(name)]
	if !ok {
		return fmt.Errorf("connection %s does not exist", name)
	}
	delete(c.m, strings.ToLower(name))
	if err := c.save(); err != nil {
		c.m[strings.ToLower(name)] = sc
		return err
	}
	return nil
}

// Resolve returns the kind and the full URL (password included) of a connection.
func (c *Connections) Resolve(name string) (kind, rawURL string, err error) {
	c.mu.Lock()
	sc, ok := c.m[strings.ToLower(name)]
	c.mu.Unlock()
	if !ok {
		return "", "", fmt.Errorf("connection %s does not exist (create it with CALL lake_connection_create('%s', 'mysql', 'mysql://user:password@host:port/db'), or pass a URL)", name, name)
	}
	if sc.Secret == "" {
		return sc.Kind, sc.URL, nil
	}
	pw, err := c.open(sc.Secret)
	if err != nil {
		return "", "", fmt.Errorf("connection %s: the password cannot be decrypted (was secret.key replaced?): %w", name, err)
	}
	u, err := url.Parse(sc.URL)
	if err != nil {
		return "", "", err
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return sc.Kind, u.String(), nil
}

// List returns the connections by name, without secrets.
func (c *Connections) List() []ConnectionInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ConnectionInfo, 0, len(c.m))
	for name, sc := range c.m {
		shown := sc.URL
		if sc.Secret != "" {
			if u, err := url.Parse(sc.URL); err == nil {
				shown = strings.Replace(u.String(), "@", ":***@", 1)
			}
		}
		out = append(out, ConnectionInfo{Name: name, Kind: sc.Kind, URL: shown, Created: sc.Created})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *Connections) seal(plain string) (string, error) {
	gcm, err := c.gcm()
	if err != nil {
		return "", err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, []byte(plain), nil)), nil
}

func (c *Connections) open(sealed string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", err
	}
	gcm, err := c.gcm()
	if err != nil {
		return "", err
	}
	if len(raw) < gcm.NonceSize() {
		return "", errors.New("sealed secret too short")
	}
	plain, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], nil)
	return string(plain), err
}

func (c *Connections) gcm() (cipher.AEAD, error) {
	block, err := aes.NewCipher(c.key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// save writes the file durably (temp file, fsync, rename, directory fsync). c.mu is held.
func (c *Connections) save() error {
	data, err := json.MarshalIndent(c.m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileSync(c.path, data, 0o600)
}

func writeFileSync(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
