package redisstore

import (
	"regexp"
	"strings"
	"testing"
)

// Every script defines each helper it calls (a forgotten "--#name" line is
// a Lua error only when that branch runs), and only those.
func TestScriptsDefineWhatTheyCall(t *testing.T) {
	scripts := map[string]*script{"create": sCreate, "update": sUpdate, "touch": sTouch, "delete": sDelete,
		"deleteUser": sDeleteUser, "readGroup": sReadGroup, "moveOut": sMoveOut, "expireScan": sExpireScan,
		"expireApply": sExpireApply, "cas": sCAS, "dueSet": sDueSet}
	for name, s := range scripts {
		if strings.Contains(s.src, "--#") {
			t.Errorf("%s: a helper marker is left", name)
		}
		for helper := range luaLib {
			called := regexp.MustCompile(`(^|[^\w.])`+helper+`\(`).FindAllStringIndex(s.src, -1)
			defined := strings.Count(s.src, "local function "+helper+"(")
			switch {
			case len(called) > defined && defined == 0:
				t.Errorf("%s calls %s without defining it", name, helper)
			case defined > 0 && len(called) == defined:
				t.Errorf("%s defines %s and never calls it", name, helper)
			}
		}
	}
}
