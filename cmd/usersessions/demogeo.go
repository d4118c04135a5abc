package main

import (
	"fmt"
	"net/netip"

	"github.com/maxmind/mmdbwriter"

	"github.com/usersessions/usersessions"
	"github.com/usersessions/usersessions/httpx"
	"github.com/usersessions/usersessions/internal/geotest"
)

// The demo shows locations without a MaxMind account: with no -geoip it
// builds, in memory, a tiny GeoIP2 City database that knows six networks,
// one per city, and the sign-in form offers to sign in "as if from" one of
// them (demoPlace). The networks are made up: plausible public ranges of
// each country, not where any real address is; a real database given with
// -geoip replaces them, and the form then offers no places.

// demoPlace is one city of the demo's database.
type demoPlace struct {
	Key       string       // form and cookie value: "zwolle"
	Network   netip.Prefix // the network the database places there
	Addr      netip.Addr   // the address a session "from" here gets
	ISO       string       // country code
	Continent string       // continent code
	TimeZone  string
	Lat, Lon  float64
	City      map[string]string // names by GeoIP locale code
	Region    map[string]string
	Country   map[string]string
	Cont      map[string]string
}

// demoPlaces are the cities of the demo database, in the order the form
// lists them. Names are in GeoIP's locales (de, en, es, fr, ja, pt-BR,
// zh-CN) and Dutch.
var demoPlaces = []demoPlace{
	{
		Key: "zwolle", Network: netip.MustParsePrefix("82.161.34.0/24"), Addr: netip.MustParseAddr("82.161.34.117"),
		ISO: "NL", Continent: "EU", TimeZone: "Europe/Amsterdam", Lat: 52.5168, Lon: 6.0830,
		City:    names("Zwolle", "Zwolle", "Zwolle", "Zwolle", "ズヴォレ", "Zwolle", "兹沃勒", "Zwolle"),
		Region:  names("Overijssel", "Overijssel", "Overijssel", "Overijssel", "オーファーアイセル州", "Overissel", "上艾瑟尔省", "Overijssel"),
		Country: names("Netherlands", "Niederlande", "Países Bajos", "Pays-Bas", "オランダ王国", "Holanda", "荷兰", "Nederland"),
		Cont:    europe,
	},
	{
		Key: "london", Network: netip.MustParsePrefix("81.2.69.0/24"), Addr: netip.MustParseAddr("81.2.69.160"),
		ISO: "GB", Continent: "EU", TimeZone: "Europe/London", Lat: 51.5142, Lon: -0.0931,
		City:    names("London", "London", "Londres", "Londres", "ロンドン", "Londres", "伦敦", "Londen"),
		Region:  names("England", "England", "Inglaterra", "Angleterre", "イングランド", "Inglaterra", "英格兰", "Engeland"),
		Country: names("United Kingdom", "Vereinigtes Königreich", "Reino Unido", "Royaume-Uni", "イギリス", "Reino Unido", "英国", "Verenigd Koninkrijk"),
		Cont:    europe,
	},
	{
		Key: "sanfrancisco", Network: netip.MustParsePrefix("64.17.254.0/24"), Addr: netip.MustParseAddr("64.17.254.38"),
		ISO: "US", Continent: "NA", TimeZone: "America/Los_Angeles", Lat: 37.7749, Lon: -122.4194,
		City:    names("San Francisco", "San Francisco", "San Francisco", "San Francisco", "サンフランシスコ", "São Francisco", "旧金山", "San Francisco"),
		Region:  names("California", "Kalifornien", "California", "Californie", "カリフォルニア州", "Califórnia", "加利福尼亚州", "Californië"),
		Country: names("United States", "USA", "Estados Unidos", "États Unis", "アメリカ", "EUA", "美国", "Verenigde Staten"),
		Cont:    names("North America", "Nordamerika", "Norteamérica", "Amérique du Nord", "北アメリカ", "América do Norte", "北美洲", "Noord-Amerika"),
	},
	{
		Key: "tokyo", Network: netip.MustParsePrefix("133.242.187.0/24"), Addr: netip.MustParseAddr("133.242.187.207"),
		ISO: "JP", Continent: "AS", TimeZone: "Asia/Tokyo", Lat: 35.6895, Lon: 139.6917,
		City:    names("Tokyo", "Tokio", "Tokio", "Tokyo", "東京", "Tóquio", "东京", "Tokio"),
		Region:  names("Tokyo", "Tokio", "Tokio", "Préfecture de Tokyo", "東京都", "Tóquio", "东京都", "Tokio"),
		Country: names("Japan", "Japan", "Japón", "Japon", "日本", "Japão", "日本", "Japan"),
		Cont:    names("Asia", "Asien", "Asia", "Asie", "アジア", "Ásia", "亚洲", "Azië"),
	},
	{
		Key: "saopaulo", Network: netip.MustParsePrefix("177.71.128.0/24"), Addr: netip.MustParseAddr("177.71.128.21"),
		ISO: "BR", Continent: "SA", TimeZone: "America/Sao_Paulo", Lat: -23.5475, Lon: -46.6361,
		City:    names("São Paulo", "São Paulo", "São Paulo", "São Paulo", "サンパウロ", "São Paulo", "圣保罗", "São Paulo"),
		Region:  names("São Paulo", "São Paulo", "São Paulo", "São Paulo", "サンパウロ州", "São Paulo", "圣保罗州", "São Paulo"),
		Country: names("Brazil", "Brasilien", "Brasil", "Brésil", "ブラジル連邦共和国", "Brasil", "巴西", "Brazilië"),
		Cont:    names("South America", "Südamerika", "Sudamérica", "Amérique du Sud", "南アメリカ", "América do Sul", "南美洲", "Zuid-Amerika"),
	},
	{
		Key: "berlin", Network: netip.MustParsePrefix("85.214.132.0/24"), Addr: netip.MustParseAddr("85.214.132.117"),
		ISO: "DE", Continent: "EU", TimeZone: "Europe/Berlin", Lat: 52.5244, Lon: 13.4105,
		City:    names("Berlin", "Berlin", "Berlín", "Berlin", "ベルリン", "Berlim", "柏林", "Berlijn"),
		Region:  names("Land Berlin", "Berlin", "Berlín", "Berlin", "ベルリン州", "Berlim", "柏林", "Berlijn"),
		Country: names("Germany", "Deutschland", "Alemania", "Allemagne", "ドイツ連邦共和国", "Alemanha", "德国", "Duitsland"),
		Cont:    europe,
	},
}

var europe = names("Europe", "Europa", "Europa", "Europe", "ヨーロッパ", "Europa", "欧洲", "Europa")

// demoLanguages are the locale codes of names(), in its argument order.
var demoLanguages = []string{"en", "de", "es", "fr", "ja", "pt-BR", "zh-CN", "nl"}

// names maps demoLanguages to the names given in their order.
func names(en, de, es, fr, ja, ptBR, zhCN, nl string) map[string]string {
	return map[string]string{"en": en, "de": de, "es": es, "fr": fr, "ja": ja, "pt-BR": ptBR, "zh-CN": zhCN, "nl": nl}
}

// demoPlaceByKey returns the place with key, or nil.
func demoPlaceByKey(key string) *demoPlace {
	for i := range demoPlaces {
		if demoPlaces[i].Key == key {
			return &demoPlaces[i]
		}
	}
	return nil
}

// buildDemoGeo returns the demo's GeoIP2-City database, as a .mmdb file's
// bytes.
func buildDemoGeo() ([]byte, error) {
	entries := make(map[string]geotest.Entry, len(demoPlaces))
	for _, p := range demoPlaces {
		if !p.Network.Contains(p.Addr) {
			return nil, fmt.Errorf("demo place %s: %v is not in %v", p.Key, p.Addr, p.Network)
		}
		entries[p.Network.String()] = geotest.Entry{
			CityNames: p.City, RegionNames: p.Region, CountryNames: p.Country, ContinentNames: p.Cont,
			CountryCode: p.ISO, ContinentCode: p.Continent, TimeZone: p.TimeZone,
			Latitude: p.Lat, Longitude: p.Lon,
		}
	}
	return geotest.Encode(mmdbwriter.Options{
		DatabaseType: "GeoIP2-City",
		Languages:    demoLanguages,
		Description: map[string]string{
			"en": "usersessions demo: six made-up networks in six cities, not real locations",
		},
		RecordSize: 24,
	}, entries)
}

// geoSet is the demo's GeoIP database opened once per language of place
// names, as a multilingual app opens it for httpx's GeoByLanguage.
type geoSet struct {
	def    *usersessions.Geo            // names in the first language: other pages, the sign-in log
	byLang map[string]*usersessions.Geo // by language of the views (httpx.Languages)
	opened []*usersessions.Geo
}

// openGeos opens path (a .mmdb file or folder; "" is the demo's own
// database) once per language in langs, each naming places in its
// language (falling back to English). Without langs: every language of
// the views for the demo's own database, which is tiny, and English only
// for a real one, which each language holds in memory again.
func openGeos(path string, langs []string) (*geoSet, error) {
	var open func(lang string) (*usersessions.Geo, error)
	if path == "" {
		data, err := buildDemoGeo()
		if err != nil {
			return nil, fmt.Errorf("building the demo's GeoIP database: %w", err)
		}
		open = func(lang string) (*usersessions.Geo, error) {
			geo, err := usersessions.OpenGeoBytes(data, &usersessions.GeoOptions{Languages: []string{lang}})
			if err != nil {
				return nil, fmt.Errorf("the demo's GeoIP database: %w", err)
			}
			return geo, nil
		}
		if len(langs) == 0 {
			langs = httpx.Languages()
		}
	} else {
		open = func(lang string) (*usersessions.Geo, error) {
			return openGeo(path, &usersessions.GeoOptions{Languages: []string{lang}})
		}
		if len(langs) == 0 {
			langs = []string{"en"}
		}
	}
	gs := &geoSet{byLang: make(map[string]*usersessions.Geo)}
	for _, lang := range langs {
		geo, err := open(lang)
		if err != nil {
			gs.Close()
			return nil, err
		}
		gs.opened = append(gs.opened, geo)
		if gs.def == nil {
			gs.def = geo
		}
		if tag := matchLanguage(lang); tag != "" && gs.byLang[tag] == nil {
			gs.byLang[tag] = geo
		}
	}
	return gs, nil
}

// Close closes every database of the set.
func (gs *geoSet) Close() {
	for _, g := range gs.opened {
		g.Close()
	}
}
