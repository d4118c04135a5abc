package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// script is a Lua script the Backend runs by its SHA-1 (EVALSHA), or by its
// source when a server does not know it yet (pipe).
type script struct {
	src string
	sha string
	ro  bool // read only: EVALSHA_RO, fit for a replica
}

func newScript(body string, ro bool) *script {
	// A shebang makes a Redis 7 cluster refuse a script that touches keys
	// of two slots, even on a node that holds both; read-only scripts say
	// so, to run with EVALSHA_RO.
	shebang := "#!lua\n"
	if ro {
		shebang = "#!lua flags=no-writes\n"
	}
	src := shebang + lua(body)
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:]), ro: ro}
}

// lua replaces each line "--#name name..." of body with the definitions
// of those helpers (luaLib), each after the helpers it uses (luaDeps).
func lua(body string) string {
	lines := strings.Split(body, "\n")
	for i, line := range lines {
		names, ok := strings.CutPrefix(strings.TrimSpace(line), "--#")
		if !ok {
			continue
		}
		var defs []string
		done := map[string]bool{}
		var define func(name string)
		define = func(name string) {
			if done[name] {
				return
			}
			done[name] = true
			for _, d := range luaDeps[name] {
				define(d)
			}
			defs = append(defs, luaLib[name])
		}
		for _, name := range strings.Fields(names) {
			if _, known := luaLib[name]; !known {
				panic("redisstore: no Lua helper " + name) // a bug in this package's scripts
			}
			define(name)
		}
		lines[i] = strings.Join(defs, "\n")
	}
	return strings.Join(lines, "\n")
}

var (
	sCreate      = newScript(scriptCreate, false)
	sUpdate      = newScript(scriptUpdate, false)
	sTouch       = newScript(scriptTouch, false)
	sDelete      = newScript(scriptDelete, false)
	sDeleteUser  = newScript(scriptDeleteUser, false)
	sReadGroup   = newScript(scriptReadGroup, true)
	sMoveOut     = newScript(scriptMoveOut, false)
	sExpireScan  = newScript(scriptExpireScan, true)
	sExpireApply = newScript(scriptExpireApply, false)
	sCAS         = newScript(scriptCAS, false)
	sDueSet      = newScript(scriptDueSet, false)
)

// step is one command of a pipeline: a plain command, or a call of s.
type step struct {
	cmd  rueidis.Completed // when s is nil
	s    *script
	keys []string
	args []string
	src  bool // send the script's source (EVAL), not its SHA-1
}

func (b *Backend) call(s *script, keys []string, args ...string) step {
	return step{s: s, keys: keys, args: args}
}

// plain is a step of cmd, pinned: a step may run twice (rerun), and rueidis
// recycles a command once it ran unless it is pinned.
func plain(cmd rueidis.Completed) step { return step{cmd: cmd.Pin()} }

func (b *Backend) build(st step) rueidis.Completed {
	if st.s == nil {
		return st.cmd
	}
	n := int64(len(st.keys))
	switch {
	case st.src && st.s.ro:
		return b.client.B().EvalRo().Script(st.s.src).Numkeys(n).Key(st.keys...).Arg(st.args...).Build()
	case st.src:
		return b.client.B().Eval().Script(st.s.src).Numkeys(n).Key(st.keys...).Arg(st.args...).Build()
	case st.s.ro:
		return b.client.B().EvalshaRo().Sha1(st.s.sha).Numkeys(n).Key(st.keys...).Arg(st.args...).Build()
	}
	return b.client.B().Evalsha().Sha1(st.s.sha).Numkeys(n).Key(st.keys...).Arg(st.args...).Build()
}

// pipe runs steps in one round trip to each server involved and returns
// their results in order. On a single server they run in order; the
// commands of one pipeline are never a transaction.
//
// Two kinds of failure say a step did not run, and it runs again:
// NOSCRIPT (the server does not know the script yet: a restart, a new
// cluster node; it runs again with its source, EVAL, which also teaches
// the server the script), and a write to a pooled connection that died
// with a server restarted since (rueidis keeps a few connections, and each
// dead one fails once; it runs again on another).
func (b *Backend) pipe(ctx context.Context, steps ...step) []rueidis.RedisResult {
	cmds := make(rueidis.Commands, len(steps))
	for i, st := range steps {
		cmds[i] = b.build(st)
	}
	res := b.client.DoMulti(ctx, cmds...)
	wait := time.Millisecond
	for range 6 {
		var again []int
		dead := false
		for i, r := range res {
			err := r.Error()
			switch {
			case err == nil:
			case unsent(err):
				again, dead = append(again, i), true
			case steps[i].s != nil && isNoScript(err):
				again, steps[i].src = append(again, i), true
			}
		}
		if len(again) == 0 || b.closed.Load() {
			break
		}
		if dead {
			if sleep(ctx, wait) != nil {
				break
			}
			wait *= 2
		}
		cmds = cmds[:len(again)]
		for j, i := range again {
			cmds[j] = b.build(steps[i])
		}
		for j, r := range b.client.DoMulti(ctx, cmds...) {
			res[again[j]] = r
		}
	}
	return res
}

func isNoScript(err error) bool {
	e, ok := rueidis.IsRedisErr(err)
	return ok && e.IsNoScript()
}

// eval runs one script.
func (b *Backend) eval(ctx context.Context, s *script, keys []string, args ...string) rueidis.RedisResult {
	return b.pipe(ctx, b.call(s, keys, args...))[0]
}

// unsent reports whether err says a command was never delivered: writing
// it failed (the peer had closed the connection). Such a command did not
// run, so running it again is safe. (A failed dial is not retried: the
// server is not there.)
func unsent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "write"
}
