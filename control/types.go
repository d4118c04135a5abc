package control

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/usersessions/usersessions"
)

// Info describes the store behind a control socket (GET /v1/info).
type Info struct {
	Path        string             `json:"path"`         // the database file, as the app opened it
	IdleTimeout time.Duration      `json:"idle_timeout"` // in force in the app, in nanoseconds; 0: none
	Lifetime    time.Duration      `json:"lifetime"`     // in nanoseconds
	Count       int                `json:"count"`        // stored sessions, expired ones not cleared yet included
	Stats       usersessions.Stats `json:"stats"`        // the app's counters since Open
	Backend     string             `json:"backend"`      // "bbolt" for a file opened with Open
	File        *File              `json:"file,omitempty"`
}

// File describes the bbolt file behind a control socket, as the app that
// holds it sees it: an operator command cannot read the free pages of a
// file another process holds.
type File struct {
	Size      int64 `json:"size"`       // the file's size in bytes
	PageSize  int   `json:"page_size"`  // bbolt's page size
	FreeBytes int64 `json:"free_bytes"` // free and pending pages, and the unused tail past the last page
}

// Session is a session as the control socket shows it: what an operator
// sees in a listing, without its token or values.
type Session struct {
	ID        string     `json:"id"`
	UserID    string     `json:"user_id,omitempty"` // "" for an anonymous session
	IP        netip.Addr `json:"ip,omitzero"`
	UserAgent string     `json:"user_agent,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	LastSeen  time.Time  `json:"last_seen"`
	ExpiresAt time.Time  `json:"expires_at"` // the end of its absolute lifetime
	Deadline  time.Time  `json:"deadline"`   // when it dies: ExpiresAt, or earlier under the app's idle timeout
}

// Active reports whether the session is alive at now.
func (s *Session) Active(now time.Time) bool { return now.Before(s.Deadline) }

// sessionOf is what the socket shows of s.
func sessionOf(s *usersessions.Session) Session {
	return Session{ID: s.ID, UserID: s.UserID, IP: s.IP, UserAgent: s.UserAgent,
		CreatedAt: s.CreatedAt, LastSeen: s.LastSeen, ExpiresAt: s.ExpiresAt, Deadline: s.Deadline()}
}

// fileSpacer is the bbolt backend's report on its file (its FileSpace
// method). Only a store opened on a file has it.
type fileSpacer interface {
	FileSpace() (size int64, pageSize int, free int64, err error)
}

// infoOf describes store, which holds n sessions.
func infoOf(store *usersessions.Store, n int) Info {
	info := Info{Path: store.Path(), IdleTimeout: store.IdleTimeout(), Lifetime: store.Lifetime(),
		Count: n, Stats: store.Stats(), Backend: fmt.Sprintf("%T", store.Backend())}
	if fs, ok := store.Backend().(fileSpacer); ok {
		info.Backend = "bbolt"
		if size, page, free, err := fs.FileSpace(); err == nil {
			info.File = &File{Size: size, PageSize: page, FreeBytes: free}
		}
	}
	return info
}
