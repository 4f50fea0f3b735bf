package config

// HTTP configures the built-in web server: the REST API, Server-Sent
// Events, Prometheus /metrics, /healthz and the wallboard.
//
// Defaults: enabled, listen "127.0.0.1:8080", no TLS, no credentials,
// service_level_seconds 20. On loopback no credentials are needed; a
// listener beyond loopback is refused unless token or username and
// password are set, because the API can log agents out and hang up calls.
type HTTP struct {
	// Enabled turns the server on (default true).
	Enabled bool `toml:"enabled"`
	// Listen is host:port.
	Listen string `toml:"listen"`
	// TLSCert and TLSKey are PEM files; both set serve HTTPS.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// Token, when set, is accepted as "Authorization: Bearer <token>".
	Token string `toml:"token"`
	// Username and Password, when set, are accepted as HTTP basic auth
	// (what a browser prompts for on the wallboard).
	Username string `toml:"username"`
	Password string `toml:"password"`
	// PublicRead lets GET requests (wallboard, lists, metrics) through
	// without credentials; writes still need them.
	PublicRead bool `toml:"public_read"`
	// ServiceLevelSeconds is the answer-time target of the service-level
	// metric: the share of queue calls answered within it.
	ServiceLevelSeconds int `toml:"service_level_seconds"`
	// Pprof serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ for profiling under load. Off by default; when on it
	// always needs the credentials (public_read does not open it), or a
	// loopback host when none are configured.
	Pprof bool `toml:"pprof"`

	// ListenDefault is true when the file did not write listen: the default
	// port being taken then costs the web server, not the PBX.
	ListenDefault bool `toml:"-"`
}

// Defaults of the [http] section.
const (
	DefaultHTTPListen              = "127.0.0.1:8080"
	DefaultHTTPServiceLevelSeconds = 20
)

// HasAuth reports whether any credentials are configured.
func (h HTTP) HasAuth() bool { return h.Token != "" || (h.Username != "" && h.Password != "") }

func validateHTTP(h *HTTP, defined map[string]bool, el *errorList) {
	if !defined["http.enabled"] {
		h.Enabled = true
	}
	if h.Listen != "" {
		if _, err := checkHostPort(h.Listen); err != nil {
			el.at("http.listen", "%q: %w", h.Listen, err)
		}
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		el.at("http.tls_cert", "tls_cert and tls_key go together: set both for HTTPS, or neither")
	}
	if (h.Username == "") != (h.Password == "") {
		el.at("http.username", "username and password go together: set both for basic auth, or neither")
	}
	if h.ServiceLevelSeconds < 0 || h.ServiceLevelSeconds > 86400 {
		el.at("http.service_level_seconds", "must be between 0 (the default, %d) and 86400", DefaultHTTPServiceLevelSeconds)
	}
	listen := orDefault(h.Listen, DefaultHTTPListen)
	if h.Enabled && !ListenIsLoopback(listen) && !h.HasAuth() {
		el.at("http.listen", "%q is beyond loopback and [http] has no token nor username and password: the API can log agents out and hang up calls, so set credentials (or listen on 127.0.0.1)", listen)
	}
}

func applyHTTPDefaults(h *HTTP) {
	h.ListenDefault = h.Listen == ""
	h.Listen = orDefault(h.Listen, DefaultHTTPListen)
	if h.ServiceLevelSeconds == 0 {
		h.ServiceLevelSeconds = DefaultHTTPServiceLevelSeconds
	}
}
