package redisstore

import (
	"context"
	"crypto/sha1"
	"encoding/hex"

	"github.com/redis/rueidis"
)

// script is a Lua script the Backend runs by its SHA-1 (EVALSHA), loading
// it when a server does not know it yet (a restart, a new cluster node).
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
	src := shebang + luaHelpers + body
	sum := sha1.Sum([]byte(src))
	return &script{src: src, sha: hex.EncodeToString(sum[:]), ro: ro}
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

	allScripts = []*script{sCreate, sUpdate, sTouch, sDelete, sDeleteUser, sReadGroup,
		sMoveOut, sExpireScan, sExpireApply, sCAS, sDueSet}
)

// step is one command of a pipeline: a plain command, or a call of s.
type step struct {
	cmd  rueidis.Completed // when s is nil
	s    *script
	keys []string
	args []string
}

func (b *Backend) call(s *script, keys []string, args ...string) step {
	return step{s: s, keys: keys, args: args}
}

func plain(cmd rueidis.Completed) step { return step{cmd: cmd} }

func (b *Backend) build(st step) rueidis.Completed {
	if st.s == nil {
		return st.cmd
	}
	n := int64(len(st.keys))
	if st.s.ro {
		return b.client.B().EvalshaRo().Sha1(st.s.sha).Numkeys(n).Key(st.keys...).Arg(st.args...).Build()
	}
	return b.client.B().Evalsha().Sha1(st.s.sha).Numkeys(n).Key(st.keys...).Arg(st.args...).Build()
}

// pipe runs steps in one round trip to each server involved and returns
// their results in order. On a single server they run in order; the
// commands of one pipeline are never a transaction. Scripts the server
// does not know (NOSCRIPT: they did not run) are loaded and run again,
// after the others.
func (b *Backend) pipe(ctx context.Context, steps ...step) []rueidis.RedisResult {
	cmds := make(rueidis.Commands, len(steps))
	for i, st := range steps {
		cmds[i] = b.build(st)
	}
	res := b.client.DoMulti(ctx, cmds...)
	var again []int
	for i, r := range res {
		if e, ok := rueidis.IsRedisErr(r.Error()); ok && e.IsNoScript() && steps[i].s != nil {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return res
	}
	if err := b.loadScripts(ctx); err != nil {
		for _, i := range again {
			res[i] = rueidis.NewErrorResult(err)
		}
		return res
	}
	cmds = cmds[:0]
	for _, i := range again {
		cmds = append(cmds, b.build(steps[i]))
	}
	for j, r := range b.client.DoMulti(ctx, cmds...) {
		res[again[j]] = r
	}
	return res
}

// eval runs one script.
func (b *Backend) eval(ctx context.Context, s *script, keys []string, args ...string) rueidis.RedisResult {
	return b.pipe(ctx, b.call(s, keys, args...))[0]
}

// loadScripts loads every script on every server.
func (b *Backend) loadScripts(ctx context.Context) error {
	for _, node := range b.client.Nodes() {
		cmds := make(rueidis.Commands, len(allScripts))
		for i, s := range allScripts {
			cmds[i] = node.B().ScriptLoad().Script(s.src).Build()
		}
		for _, r := range node.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
	}
	return nil
}
