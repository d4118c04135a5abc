package redisstore

import (
	"encoding/base64"
	"strings"

	"github.com/usersessions/usersessions/backend"
)

// Key layout.
//
// Every session belongs to a group, and a group's keys share one Redis
// Cluster hash tag, so each script that changes a group runs on one slot:
//
//   - a user's group, tag "u" + base64url(user): the user's records, their
//     index and their history change together, atomically;
//   - an anonymous session is a group of its own, tag "a" + its ID.
//
// Keys, for prefix P, group tag G and session ID X (its 22-character text):
//
//	P:s:{G}:X     hash    the record (fields in record.go)
//	P:idx:{G}     zset    a user's IDs scored by deadline (µs)
//	P:hist:{G}    zset    a user's history entries scored by keep-until (µs)
//	P:loc:{aX}    string  the locator of X: which group holds it (locator.go)
//	P:all         zset    every ID (16 raw bytes, score 0), in ID order
//	P:due         zset    group tags scored by the earliest moment (µs)
//	                      something of the group may be due for cleanup
//	P:settings    hash    schema version, idle timeout in force
//	P:lock        string  held while Open changes settings
//
// and the Pub/Sub channel P:changes carries change notices (feed.go). A
// Load knows only the ID, so it reads the locator first (cached on the
// client, see Get), which shares its slot with the anonymous group of the
// same ID.

// group is a session's group: its hash tag and its keys' prefix.
type group struct {
	user string // "" for an anonymous session
	tag  string // the hash tag's content
	base string // P + ":" (for the keys below)
}

func (b *Backend) userGroup(user string) group {
	return group{user: user, tag: "u" + base64.RawURLEncoding.EncodeToString([]byte(user)), base: b.base}
}

func (b *Backend) anonGroup(id backend.ID) group {
	return group{tag: "a" + id.String(), base: b.base}
}

// groupOf is the group of a session of user with ID id.
func (b *Backend) groupOf(user string, id backend.ID) group {
	if user == "" {
		return b.anonGroup(id)
	}
	return b.userGroup(user)
}

// groupOfTag is the group with hash tag tag (from P:due), ok false for a
// tag this version cannot have written.
func (b *Backend) groupOfTag(tag string) (group, bool) {
	switch {
	case strings.HasPrefix(tag, "u"):
		user, err := base64.RawURLEncoding.DecodeString(tag[1:])
		if err != nil || len(user) == 0 {
			return group{}, false
		}
		return b.userGroup(string(user)), true
	case strings.HasPrefix(tag, "a"):
		id, ok := backend.ParseID(tag[1:])
		if !ok {
			return group{}, false
		}
		return b.anonGroup(id), true
	}
	return group{}, false
}

func (g group) anonymous() bool { return g.user == "" }

// recPrefix is the prefix of the group's record keys; a record's key is it
// plus the ID's text.
func (g group) recPrefix() string { return g.base + "s:{" + g.tag + "}:" }
func (g group) rec(id backend.ID) string {
	return g.recPrefix() + id.String()
}
func (g group) idx() string  { return g.base + "idx:{" + g.tag + "}" }
func (g group) hist() string { return g.base + "hist:{" + g.tag + "}" }

// loc is the key of id's locator.
func (b *Backend) loc(id backend.ID) string { return b.base + "loc:{a" + id.String() + "}" }

func (b *Backend) allKey() string      { return b.base + "all" }
func (b *Backend) dueKey() string      { return b.base + "due" }
func (b *Backend) settingsKey() string { return b.base + "settings" }
func (b *Backend) lockKey() string     { return b.base + "lock" }
func (b *Backend) channel() string     { return b.base + "changes" }
