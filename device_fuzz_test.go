package usersessions

import "testing"

// FuzzDevice checks that no user agent makes Device or ParseDevice panic,
// and that answers stay short valid UTF-8 equal to ParseDevice's String.
func FuzzDevice(f *testing.F) {
	for _, v := range djangoDeviceVectors {
		f.Add(v.ua)
	}
	for _, c := range modernDevices {
		f.Add(c.ua)
	}
	for _, r := range loadUserAgentTable(f) {
		f.Add(r.ua)
	}
	f.Add("Mozilla/5.0 (compatible; MSIE")
	f.Add("Opera/9.80 (Windows NT 6.1) Version/")
	f.Add("Mozilla/5.0 (compatible; MSIE 5.0) Opera")
	f.Add("UC Browser/")
	f.Add("UCWEB")
	f.Fuzz(func(t *testing.T, ua string) {
		checkDeviceInvariants(t, ua)
	})
}
