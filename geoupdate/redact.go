package geoupdate

import "strings"

// redactedError hides secrets in an error's text while keeping it
// inspectable with errors.Is and errors.As.
type redactedError struct {
	err     error
	secrets []string
}

func (e *redactedError) Error() string {
	s := e.err.Error()
	for _, secret := range e.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[license key]")
		}
	}
	return s
}

func (e *redactedError) Unwrap() error { return e.err }
