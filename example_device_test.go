package usersessions_test

import (
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/internal/geotest"
)

func ExampleDevice() {
	for _, ua := range []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
		"Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (iPad; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
		"curl/8.4.0",
		"Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#5.15.0 lang/python#3.11.6",
		"Firefox",
		"Mozilla/5.0 (X11; Linux x86_64)",
		"",
	} {
		fmt.Printf("%q\n", usersessions.Device(ua))
	}
	// Output:
	// "Safari on iPhone"
	// "Chrome on iPhone"
	// "Edge on Windows"
	// "Samsung Internet on Android"
	// "Safari on iPad"
	// "Googlebot"
	// "PetalBot"
	// "curl"
	// "Boto3"
	// "Firefox"
	// "Linux"
	// ""
}

func ExampleParseDevice() {
	d := usersessions.ParseDevice("Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")
	fmt.Println(d.Browser, d.BrowserVersion)
	fmt.Println(d.Platform, d.OSVersion)
	fmt.Println("mobile:", d.Mobile, "bot:", d.Bot)
	fmt.Println(d)
	// Output:
	// Safari 17.1
	// iPad 17.1
	// mobile: true bot: false
	// Safari on iPad
}

func ExampleGeo_Location() {
	dir, err := os.MkdirTemp("", "geo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// In production: usersessions.OpenGeo("/var/lib/GeoIP", ...), the
	// directory geoipupdate or geoupdate.Download keeps current.
	writeExampleCityDB(filepath.Join(dir, "GeoLite2-City.mmdb"))

	geo, err := usersessions.OpenGeo(dir, &usersessions.GeoOptions{Languages: []string{"nl"}})
	if err != nil {
		log.Fatal(err)
	}
	defer geo.Close()

	fmt.Printf("%q\n", geo.Location(netip.MustParseAddr("192.0.2.1")))    // Dutch names
	fmt.Printf("%q\n", geo.Location(netip.MustParseAddr("198.51.100.1"))) // English city, Dutch country
	fmt.Printf("%q\n", geo.Location(netip.MustParseAddr("10.0.0.1")))     // private
	info, ok := geo.LocationInfo(netip.MustParseAddr("192.0.2.1"))
	fmt.Println(ok, info.CountryCode, info.TimeZone)

	// A nil *Geo is valid: an application without a database shows nothing.
	var none *usersessions.Geo
	fmt.Printf("%q\n", none.Location(netip.MustParseAddr("192.0.2.1")))
	// Output:
	// "Den Haag, Nederland"
	// "Zwolle, Nederland"
	// ""
	// true NL Europe/Amsterdam
	// ""
}

// writeExampleCityDB writes a small database shaped like GeoLite2-City, for
// the example only.
func writeExampleCityDB(path string) {
	netherlands := map[string]string{"en": "Netherlands", "nl": "Nederland"}
	data, err := geotest.Encode(mmdbwriter.Options{DatabaseType: "GeoLite2-City", Languages: []string{"en", "nl"}},
		map[string]geotest.Entry{
			"192.0.2.0/24": {CityNames: map[string]string{"en": "The Hague", "nl": "Den Haag"},
				CountryNames: netherlands, CountryCode: "NL", TimeZone: "Europe/Amsterdam"},
			"198.51.100.0/24": {City: "Zwolle", CountryNames: netherlands, CountryCode: "NL"},
			"10.0.0.0/8":      {CountryNames: netherlands, CountryCode: "NL"}, // never looked up: private
		})
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		log.Fatal(err)
	}
}
