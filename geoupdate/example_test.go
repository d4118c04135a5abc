package geoupdate_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/geoupdate"
	"github.com/usersessions/usersessions/internal/geotest"
)

func ExampleDownload() {
	// A stand-in for MaxMind: in production, leave Options.BaseURL empty
	// and pass a real license key.
	srv := httptest.NewServer(exampleMaxMind("YOUR_LICENSE_KEY", "GeoLite2-City"))
	defer srv.Close()

	dir, err := os.MkdirTemp("", "geoip") // in production: /var/lib/GeoIP
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	file, err := geoupdate.Download(context.Background(), "YOUR_LICENSE_KEY", "GeoLite2-City", dir,
		&geoupdate.Options{BaseURL: srv.URL})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(filepath.Base(file))

	// The application opens the directory; a Geo with WatchInterval set
	// would pick up later downloads by itself.
	geo, err := usersessions.OpenGeo(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer geo.Close()
	fmt.Println(geo.Location(netip.MustParseAddr("192.0.2.1")))
	// Output:
	// GeoLite2-City.mmdb
	// Berlin, Germany
}

// exampleMaxMind serves edition to key, the way MaxMind does, holding a
// database of one network in Berlin.
func exampleMaxMind(key, edition string) *geotest.MaxMind {
	db, err := geotest.Encode(mmdbwriter.Options{DatabaseType: edition},
		map[string]geotest.Entry{"192.0.2.0/24": {City: "Berlin", Country: "Germany", CountryCode: "DE"}})
	if err != nil {
		log.Fatal(err)
	}
	archive, err := geotest.TarGz(geotest.EditionFiles(edition, db)...)
	if err != nil {
		log.Fatal(err)
	}
	return &geotest.MaxMind{Edition: edition, LicenseKey: key, Archive: archive}
}
