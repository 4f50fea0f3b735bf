package config

// Profile returns the SIP profile named name, or nil.
func (c *Config) Profile(name string) *Profile {
	for i := range c.Profiles {
		if c.Profiles[i].Name == name {
			return &c.Profiles[i]
		}
	}
	return nil
}

// User returns the directory user with id, or nil.
func (d *Directory) User(id string) *User {
	for i := range d.Users {
		if d.Users[i].ID == id {
			return &d.Users[i]
		}
	}
	return nil
}

// Context returns the dialplan context named name, or nil.
func (d *Dialplan) Context(name string) *Context {
	for i := range d.Contexts {
		if d.Contexts[i].Name == name {
			return &d.Contexts[i]
		}
	}
	return nil
}
