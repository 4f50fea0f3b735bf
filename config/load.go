package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

var preVar = regexp.MustCompile(`\$\$\{([A-Za-z0-9_]+)\}`)

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b)
}

// Parse decodes and validates a config file's bytes; name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	var pre struct {
		Vars map[string]string `toml:"vars"`
	}
	if _, err := toml.Decode(string(data), &pre); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	text := preVar.ReplaceAllStringFunc(string(data), func(m string) string {
		k := preVar.FindStringSubmatch(m)[1]
		if v, ok := pre.Vars[k]; ok {
			return strings.ReplaceAll(v, `"`, `\"`)
		}
		return m
	})
	var c Config
	if _, err := toml.Decode(text, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.File = name
	return &c, nil
}
