package main

import (
	"testing"
)

// Every place of the demo database is found at its address, in English and
// in the other languages.
func TestDemoGeo(t *testing.T) {
	want := map[string]string{
		"zwolle": "Zwolle, Netherlands", "london": "London, United Kingdom",
		"sanfrancisco": "San Francisco, United States", "tokyo": "Tokyo, Japan",
		"saopaulo": "São Paulo, Brazil", "berlin": "Berlin, Germany",
	}
	geo, err := openDemoGeo(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer geo.Close()
	if len(demoPlaces) != len(want) {
		t.Errorf("%d places", len(demoPlaces))
	}
	for _, p := range demoPlaces {
		if got := geo.Location(p.Addr); got != want[p.Key] {
			t.Errorf("%s: %q, want %q", p.Key, got, want[p.Key])
		}
		if got := geo.Location(p.Addr.Prev().Prev()); p.Network.Contains(p.Addr.Prev().Prev()) && got != want[p.Key] {
			t.Errorf("%s: another address of the network: %q", p.Key, got)
		}
		info, ok := geo.LocationInfo(p.Addr)
		if !ok || info.CountryCode != p.ISO || info.TimeZone != p.TimeZone || info.Region == "" || info.Continent == "" {
			t.Errorf("%s: %+v, %v", p.Key, info, ok)
		}
		if demoPlaceByKey(p.Key) == nil {
			t.Errorf("%s not found by key", p.Key)
		}
	}
	if got := geo.Location(demoPlaces[0].Network.Addr().Prev()); got != "" {
		t.Errorf("an address outside the networks: %q", got)
	}
	if demoPlaceByKey("atlantis") != nil || demoPlaceByKey("") != nil {
		t.Error("an unknown key found a place")
	}
	for lang, w := range map[string]string{"nl": "Zwolle, Nederland", "de": "Zwolle, Niederlande", "ja": "ズヴォレ, オランダ王国", "zh-CN": "兹沃勒, 荷兰"} {
		g, err := openDemoGeo([]string{lang})
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Location(demoPlaces[0].Addr); got != w {
			t.Errorf("%s: %q, want %q", lang, got, w)
		}
		g.Close()
	}
}
