package geotest

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/oschwald/maxminddb-golang/v2"
)

// record is a decoded GeoIP2 record; at reads it.
type record map[string]any

// at returns the value at path (map keys, or an index into a slice as
// "0"), or nil.
func (r record) at(path ...string) any {
	var v any = map[string]any(r)
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			if k != "0" || len(x) == 0 {
				return nil
			}
			v = x[0]
		default:
			return nil
		}
	}
	return v
}

func lookup(t *testing.T, data []byte, ip string) (record, maxminddb.Metadata) {
	t.Helper()
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	rec := record{}
	if err := r.Lookup(netip.MustParseAddr(ip)).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return rec, r.Metadata
}

var berlin = Entry{
	City: "Berlin", Region: "Land Berlin", Country: "Germany", CountryCode: "DE",
	Continent: "Europe", ContinentCode: "EU", TimeZone: "Europe/Berlin", Latitude: 52.52, Longitude: 13.4,
	CityNames:   map[string]string{"de": "Berlin (de)"},
	RegionNames: map[string]string{"en": "State of Berlin"}, // replaces Region
}

func TestBuildCity(t *testing.T) {
	rec, md := lookup(t, Build(t, "GeoIP2-City", map[string]Entry{"192.0.2.0/24": berlin}), "192.0.2.1")
	if md.DatabaseType != "GeoIP2-City" || strings.Join(md.Languages, ",") != strings.Join(Languages, ",") || md.RecordSize != 28 {
		t.Errorf("metadata: type %q, languages %q, record size %d", md.DatabaseType, md.Languages, md.RecordSize)
	}
	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"city", "names", "en"}, "Berlin"},
		{[]string{"city", "names", "de"}, "Berlin (de)"},
		{[]string{"subdivisions", "0", "names", "en"}, "State of Berlin"},
		{[]string{"country", "iso_code"}, "DE"},
		{[]string{"country", "names", "en"}, "Germany"},
		{[]string{"continent", "code"}, "EU"},
		{[]string{"continent", "names", "en"}, "Europe"},
		{[]string{"location", "time_zone"}, "Europe/Berlin"},
		{[]string{"location", "latitude"}, 52.52},
	} {
		if got := rec.at(c.path...); got != c.want {
			t.Errorf("%s = %v, want %v", strings.Join(c.path, "."), got, c.want)
		}
	}
}

func TestBuildCountryHasNoCityData(t *testing.T) {
	rec, _ := lookup(t, Build(t, "GeoLite2-Country", map[string]Entry{"192.0.2.0/24": berlin}), "192.0.2.1")
	if rec.at("city") != nil || rec.at("subdivisions") != nil || rec.at("location") != nil {
		t.Errorf("a Country database holds city data: %v", rec)
	}
	if rec.at("country", "iso_code") != "DE" || rec.at("continent", "code") != "EU" {
		t.Errorf("country and continent missing: %v", rec)
	}
}

func TestEncodeReportsBadInput(t *testing.T) {
	for name, c := range map[string]struct {
		opts    mmdbwriter.Options
		entries map[string]Entry
	}{
		"bad CIDR":        {mmdbwriter.Options{DatabaseType: "GeoIP2-City"}, map[string]Entry{"192.0.2.0/99": berlin}},
		"bad record size": {mmdbwriter.Options{DatabaseType: "GeoIP2-City", RecordSize: 17}, nil},
	} {
		if data, err := Encode(c.opts, c.entries); err == nil || data != nil {
			t.Errorf("%s: Encode = %d bytes, %v; want an error", name, len(data), err)
		}
	}
}
