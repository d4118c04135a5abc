package usersessions

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// djangoDeviceVectors are the device filter vectors of django-user-sessions'
// own test suite (MIT licence), copied so this repository's tests stand
// alone. The full peer file, with its browser and platform rows too, is
// checked by TestDeviceDjangoPeerFile when it is present.
var djangoDeviceVectors = []struct{ ua, want string }{
	{"Mozilla/4.0 (Windows; MSIE 6.0; Windows NT 5.1; SV1; .NET CLR 2.0.50727)", "Internet Explorer on Windows"},
	{"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.0; Trident/4.0; SLCC1; .NET CLR 2.0.50727; .NET CLR 1.1.4322; InfoPath.2; .NET CLR 3.5.21022; .NET CLR 3.5.30729; MS-RTC LM 8; OfficeLiveConnector.1.4; OfficeLivePatch.1.3; .NET CLR 3.0.30729)", "Internet Explorer on Windows"},
	{"Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)", "Internet Explorer on Windows"},
	{"Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Win64; x64; Trident/6.0)", "Internet Explorer on Windows"},
	{"Mozilla/5.0 (IE 11.0; Windows NT 6.3; Trident/7.0; .NET4.0E; .NET4.0C; rv:11.0) like Gecko", "Internet Explorer on Windows"},
	{"Mozilla/5.0 (iPad; U; CPU OS 4_2_1 like Mac OS X; ja-jp) AppleWebKit/533.17.9 (KHTML, like Gecko) Version/5.0.2 Mobile/8C148 Safari/6533.18.5", "Safari on iPad"},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 7_0 like Mac OS X) AppleWebKit/537.51.1 (KHTML, like Gecko) Version/7.0 Mobile/11A465 Safari/9537.53", "Safari on iPhone"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/85.0.4178.0 Safari/537.36", "Chrome on macOS"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:77.0) Gecko/20100101 Firefox/77.0", "Firefox on macOS"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_8_2) AppleWebKit/536.26.17 (KHTML, like Gecko) Version/6.0.2 Safari/536.26.17", "Safari on macOS"},
	{"Mozilla/5.0 (Linux; U; Android 1.5; de-de; HTC Magic Build/CRB17) AppleWebKit/528.5+ (KHTML, like Gecko) Version/3.1.2 Mobile Safari/525.20.1", "Safari on Android"},
	{"Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:22.0) Gecko/20130328 Firefox/22.0", "Firefox on Windows"},
	{"Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/30.0.1599.101 Safari/537.36", "Chrome on Windows"},
	{"Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.10136", "Edge on Windows"},
	{"Mozilla/5.0 (Windows Mobile 10; Android 8.0.0; Microsoft; Lumia 950XL) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.62 Mobile Safari/537.36 Edge/40.15254.369", "Edge on Windows Mobile"},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.113 Safari/537.36 Edg/81.0.416.62", "Edge on Windows"},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/85.0.4183.102 Safari/537.36 Edg/85.0.564.51", "Edge on macOS"},
	{"Mozilla/5.0 (Linux; Android 11; Pixel 3 XL) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/77.0.3865.116 Mobile Safari/537.36 EdgA/45.07.4.5059", "Edge on Android"},
	{"Not a legit OS Firefox/51.0", "Firefox"},
	{"Not a legit OS Chrome/54.0.32", "Chrome"},
	{"Not a legit OS Safari/5.2", "Safari"},
	{"Linux not a real browser/10.3", "Linux"},
	{"iPad not a real browser/10.3", "iPad"},
	{"iPhone not a real browser/10.3", "iPhone"},
	{"Windows NT 5.1 not a real browser/10.3", "Windows"},
	{"Windows NT 6.0 not a real browser/10.3", "Windows"},
	{"Windows NT 6.1 not a real browser/10.3", "Windows"},
	{"Windows NT 6.2 not a real browser/10.3", "Windows"},
	{"Windows NT 6.3 not a real browser/10.3", "Windows"},
	{"Windows not a real browser/10.3", "Windows"},
}

func TestDeviceDjangoVectors(t *testing.T) {
	for _, v := range djangoDeviceVectors {
		if got := Device(v.ua); got != v.want {
			t.Errorf("Device(%q) = %q, want %q", v.ua, got, v.want)
		}
	}
}

// TestDeviceDjangoPeerFile checks every row of the shared peer file
// (function, user agent, expected; NONE for no answer): device rows against
// Device, browser rows against DeviceInfo.Browser, platform rows against
// DeviceInfo.Platform. The file lives outside the repository.
func TestDeviceDjangoPeerFile(t *testing.T) {
	path := filepath.Join("..", "shared", "testdata", "peers", "django-user-sessions-device.tsv")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("peer vectors %s not present; the in-repository copy is checked by TestDeviceDjangoVectors", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	rows := 0
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Split(sc.Text(), "\t")
		if line == 1 || len(fields) == 1 && fields[0] == "" {
			continue // header, blank line
		}
		if len(fields) != 3 {
			t.Fatalf("%s:%d: %d fields, want 3", path, line, len(fields))
		}
		fn, ua, want := fields[0], fields[1], fields[2]
		if want == "NONE" {
			want = ""
		}
		var got string
		switch fn {
		case "device":
			got = Device(ua)
		case "browser":
			got = ParseDevice(ua).Browser
		case "platform":
			got = ParseDevice(ua).Platform
		default:
			t.Fatalf("%s:%d: unknown function %q", path, line, fn)
		}
		if got != want {
			t.Errorf("%s:%d: %s(%q) = %q, want %q", path, line, fn, ua, got, want)
		}
		rows++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rows == 0 {
		t.Fatalf("%s: no vectors read", path)
	}
}

// modernDevices are today's user agents, most of which django-user-sessions
// misreads (Chrome and Firefox on iOS as Safari, Samsung Internet and Opera
// as Chrome, ChromeOS as Linux, bots and clients as nothing or a platform).
var modernDevices = []struct {
	name string
	ua   string
	want DeviceInfo
}{
	{"chrome windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		DeviceInfo{Browser: "Chrome", BrowserVersion: "120.0.0.0", Platform: "Windows", OSVersion: "10.0"}},
	{"chrome iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
		DeviceInfo{Browser: "Chrome", BrowserVersion: "120.0.6099.119", Platform: "iPhone", OSVersion: "17.1", Mobile: true}},
	{"firefox iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15",
		DeviceInfo{Browser: "Firefox", BrowserVersion: "121.0", Platform: "iPhone", OSVersion: "17.1", Mobile: true}},
	{"firefox ipad desktop mode", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 Safari/605.1.15",
		DeviceInfo{Browser: "Firefox", BrowserVersion: "121.0", Platform: "iPad", Mobile: true}},
	{"edge iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/120.0.2210.126 Mobile/15E148 Safari/605.1.15",
		DeviceInfo{Browser: "Edge", BrowserVersion: "120.0.2210.126", Platform: "iPhone", OSVersion: "17.2", Mobile: true}},
	{"edge windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
		DeviceInfo{Browser: "Edge", BrowserVersion: "120.0.2210.91", Platform: "Windows", OSVersion: "10.0"}},
	{"edge android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 EdgA/120.0.2210.115",
		DeviceInfo{Browser: "Edge", BrowserVersion: "120.0.2210.115", Platform: "Android", OSVersion: "10", Mobile: true}},
	{"samsung internet", "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
		DeviceInfo{Browser: "Samsung Internet", BrowserVersion: "23.0", Platform: "Android", OSVersion: "13", Mobile: true}},
	{"opera windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
		DeviceInfo{Browser: "Opera", BrowserVersion: "106.0.0.0", Platform: "Windows", OSVersion: "10.0"}},
	{"opera android", "Mozilla/5.0 (Linux; Android 12; SM-A525F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 OPR/79.0.4195.76592",
		DeviceInfo{Browser: "Opera", BrowserVersion: "79.0.4195.76592", Platform: "Android", OSVersion: "12", Mobile: true}},
	{"opera ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 12_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) OPiOS/16.0.14.122053 Mobile/16A366 Safari/9537.53",
		DeviceInfo{Browser: "Opera", BrowserVersion: "16.0.14.122053", Platform: "iPhone", OSVersion: "12.0", Mobile: true}},
	{"opera presto", "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
		DeviceInfo{Browser: "Opera", BrowserVersion: "12.18", Platform: "Windows", OSVersion: "6.1"}},
	{"yandex", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 YaBrowser/23.11.0.0 Safari/537.36",
		DeviceInfo{Browser: "Yandex Browser", BrowserVersion: "23.11.0.0", Platform: "Windows", OSVersion: "10.0"}},
	{"vivaldi", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Vivaldi/6.5.3206.48",
		DeviceInfo{Browser: "Vivaldi", BrowserVersion: "6.5.3206.48", Platform: "Windows", OSVersion: "10.0"}},
	{"uc browser", "Mozilla/5.0 (Linux; U; Android 10; en-US; RMX1911 Build/QKQ1.200209.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36",
		DeviceInfo{Browser: "UC Browser", BrowserVersion: "13.4.0.1306", Platform: "Android", OSVersion: "10", Mobile: true}},
	{"chromium", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/120.0.0.0 Chrome/120.0.0.0 Safari/537.36",
		DeviceInfo{Browser: "Chromium", BrowserVersion: "120.0.0.0", Platform: "Linux"}},
	{"headless chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 Safari/537.36",
		DeviceInfo{Browser: "Headless Chrome", BrowserVersion: "120.0.6099.109", Platform: "Linux"}},
	{"chromeos", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		DeviceInfo{Browser: "Chrome", BrowserVersion: "120.0.0.0", Platform: "ChromeOS", OSVersion: "14541.0.0"}},
	{"firefox linux", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		DeviceInfo{Browser: "Firefox", BrowserVersion: "121.0", Platform: "Linux"}},
	{"firefox android", "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
		DeviceInfo{Browser: "Firefox", BrowserVersion: "121.0", Platform: "Android", OSVersion: "14", Mobile: true}},
	{"safari macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
		DeviceInfo{Browser: "Safari", BrowserVersion: "17.1", Platform: "macOS", OSVersion: "10.15.7"}},
	{"safari ipad", "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		DeviceInfo{Browser: "Safari", BrowserVersion: "17.1", Platform: "iPad", OSVersion: "17.1", Mobile: true}},
	{"safari ipod", "Mozilla/5.0 (iPod touch; CPU iPhone OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1",
		DeviceInfo{Browser: "Safari", BrowserVersion: "12.1.2", Platform: "iPod", OSVersion: "12.5.7", Mobile: true}},
	{"ios in-app view", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		DeviceInfo{Platform: "iPhone", OSVersion: "17.1", Mobile: true}},
	{"ie windows phone", "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; ARM; Touch; NOKIA; Lumia 920)",
		DeviceInfo{Browser: "Internet Explorer", BrowserVersion: "10.0", Platform: "Windows Mobile", OSVersion: "8.0", Mobile: true}},
	{"ie 11", "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
		DeviceInfo{Browser: "Internet Explorer", BrowserVersion: "11.0", Platform: "Windows", OSVersion: "6.1"}},
	{"phone model with bot in its name", "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
		DeviceInfo{Browser: "Chrome", BrowserVersion: "120.0.0.0", Platform: "Android", OSVersion: "10", Mobile: true}},
	{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		DeviceInfo{Browser: "Googlebot", BrowserVersion: "2.1", Bot: true}},
	{"googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.216 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		DeviceInfo{Browser: "Googlebot", BrowserVersion: "2.1", Bot: true}},
	{"bingbot", "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
		DeviceInfo{Browser: "bingbot", BrowserVersion: "2.0", Bot: true}},
	{"baiduspider", "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
		DeviceInfo{Browser: "Baiduspider", BrowserVersion: "2.0", Bot: true}},
	{"ahrefsbot", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
		DeviceInfo{Browser: "AhrefsBot", BrowserVersion: "7.0", Bot: true}},
	{"facebook", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
		DeviceInfo{Browser: "facebookexternalhit", BrowserVersion: "1.1", Bot: true}},
	{"telegram", "TelegramBot (like TwitterBot)",
		DeviceInfo{Browser: "TelegramBot", Bot: true}},
	{"slack", "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
		DeviceInfo{Browser: "Slackbot-LinkExpanding", Bot: true}},
	{"curl", "curl/8.4.0", DeviceInfo{Browser: "curl", BrowserVersion: "8.4.0"}},
	{"wget", "Wget/1.21.4 (linux-gnu)", DeviceInfo{Browser: "Wget", BrowserVersion: "1.21.4"}},
	{"httpie", "HTTPie/3.2.2", DeviceInfo{Browser: "HTTPie", BrowserVersion: "3.2.2"}},
	{"go", "Go-http-client/1.1", DeviceInfo{Browser: "Go-http-client", BrowserVersion: "1.1"}},
	{"python-requests", "python-requests/2.31.0", DeviceInfo{Browser: "python-requests", BrowserVersion: "2.31.0"}},
	{"okhttp", "okhttp/4.12.0", DeviceInfo{Browser: "OkHttp", BrowserVersion: "4.12.0"}},
	{"postman", "PostmanRuntime/7.36.0", DeviceInfo{Browser: "Postman", BrowserVersion: "7.36.0"}},
	{"powershell", "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.19045; en-US) PowerShell/7.4.0",
		DeviceInfo{Browser: "PowerShell", BrowserVersion: "7.4.0"}},
	{"client then bot", "curl/8.4.0 (compatible; ExampleBot/1.0)",
		DeviceInfo{Browser: "ExampleBot", BrowserVersion: "1.0", Bot: true}},
	// Issue 11: versions and platforms where the browser hides its name.
	{"opera as msie", "Mozilla/4.0 (compatible; MSIE 5.0; Windows 2000) Opera 6.12 [en]",
		DeviceInfo{Browser: "Opera", BrowserVersion: "6.12", Platform: "Windows"}},
	{"opera mini", "Mozilla/5.0 (Linux; U; Android 4.2.2; en-US) Opera Mini/7.5.33361/31.1448 Mobile",
		DeviceInfo{Browser: "Opera", BrowserVersion: "7.5.33361", Platform: "Android", Mobile: true}},
	{"ucweb build", "NOKIA5700/ UCWEB7.0.2.37/28/999",
		DeviceInfo{Browser: "UC Browser", BrowserVersion: "7.0.2.37"}},
	{"ucweb then ucbrowser", "UCWEB/2.0 (MIDP-2.0; U; Adr 4.0.4; en-US; ZTE_U795) U2/1.0.0 UCBrowser/10.7.6.805 U2/1.0.0 Mobile",
		DeviceInfo{Browser: "UC Browser", BrowserVersion: "10.7.6.805", Platform: "Android", Mobile: true}},
	{"uc browser with a space", "Mozilla/5.0 (Linux; U; Android 4.2.2; en-US; Micromax A116 Build/JDQ39) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 UC Browser/9.8.0.435 U3/0.8.0 Mobile Safari/534.30",
		DeviceInfo{Browser: "UC Browser", BrowserVersion: "9.8.0.435", Platform: "Android", OSVersion: "4.2.2", Mobile: true}},
	{"ipad sending iphone os", "Mozilla/5.0 (iPad; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
		DeviceInfo{Browser: "Safari", BrowserVersion: "12.0", Platform: "iPad", OSVersion: "12.1", Mobile: true}},
	{"headless after chromium", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/120.0.0.0 HeadlessChrome/120.0.0.1 Safari/537.36",
		DeviceInfo{Browser: "Headless Chrome", BrowserVersion: "120.0.0.1", Platform: "Linux"}},
	{"windows ce", "Mozilla/4.0 (compatible; MSIE 6.0; Windows CE; IEMobile 7.11)",
		DeviceInfo{Browser: "Internet Explorer", BrowserVersion: "6.0", Platform: "Windows Mobile", Mobile: true}},
	{"bare name", "Firefox", DeviceInfo{Browser: "Firefox"}},
	{"petalbot", "Mozilla/5.0 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
		DeviceInfo{Browser: "PetalBot", Bot: true}},
	{"boto3", "Boto3/1.28.57 Python/3.11.5 Linux/5.15.0-1045-aws Botocore/1.31.57",
		DeviceInfo{Browser: "Boto3", BrowserVersion: "1.28.57"}},
	{"aiohttp", "Python/3.11 aiohttp/3.9.1", DeviceInfo{Browser: "aiohttp", BrowserVersion: "3.9.1"}},
	{"empty", "", DeviceInfo{}},
	{"spaces", "   ", DeviceInfo{}},
	{"unknown product", "Lynx/2.8.9rel.1 libwww-FM/2.14 SSL-MM/1.4.1", DeviceInfo{}},
	{"invalid utf-8", "\xff\xfe\xfd", DeviceInfo{}},
	{"markup in a bot name", "Mozilla/5.0 (compatible; <script>bot/1.0)", DeviceInfo{}},
	{"markup in a version", "Mozilla/5.0 (Windows NT 10.0) Chrome/<b>1</b>",
		DeviceInfo{Browser: "Chrome", Platform: "Windows", OSVersion: "10.0"}},
}

func TestParseDeviceModern(t *testing.T) {
	for _, c := range modernDevices {
		if got := ParseDevice(c.ua); got != c.want {
			t.Errorf("%s: ParseDevice(%q)\n got %+v\nwant %+v", c.name, c.ua, got, c.want)
		}
	}
}

func TestDeviceModern(t *testing.T) {
	want := map[string]string{
		"chrome iphone":        "Chrome on iPhone",
		"firefox iphone":       "Firefox on iPhone",
		"samsung internet":     "Samsung Internet on Android",
		"opera windows":        "Opera on Windows",
		"edge iphone":          "Edge on iPhone",
		"chromeos":             "Chrome on ChromeOS",
		"googlebot smartphone": "Googlebot",
		"curl":                 "curl",
		"ios in-app view":      "iPhone",
		"empty":                "",
	}
	for _, c := range modernDevices {
		got := Device(c.ua)
		if w, ok := want[c.name]; ok && got != w {
			t.Errorf("%s: Device(%q) = %q, want %q", c.name, c.ua, got, w)
		}
		// Device is documented to equal ParseDevice(ua).String().
		if s := ParseDevice(c.ua).String(); got != s {
			t.Errorf("%s: Device = %q but ParseDevice.String = %q", c.name, got, s)
		}
	}
	for _, v := range djangoDeviceVectors {
		if got, s := Device(v.ua), ParseDevice(v.ua).String(); got != s {
			t.Errorf("Device(%q) = %q but ParseDevice.String = %q", v.ua, got, s)
		}
	}
}

// TestDeviceEveryRuleRow covers the rows of Device's tables that the user
// agents above do not.
func TestDeviceEveryRuleRow(t *testing.T) {
	cases := map[string]string{
		"Slackbot 1.0 (+https://api.slack.com/robots)":                  "Slackbot",
		"Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)": "MJ12bot",
		"Mozilla/5.0 (compatible; Yeti-Crawler/1.0)":                    "Yeti-Crawler",
		"Python-urllib/3.11":  "Python-urllib",
		"python-httpx/0.26.0": "python-httpx",
		"insomnia/8.5.1":      "Insomnia",
		"axios/1.6.2":         "axios",
		"node-fetch/1.0 (+https://github.com/bitinn/node-fetch)": "node-fetch",
		"libwww-perl/6.72":                       "libwww-perl",
		"Java/17.0.9":                            "Java",
		"Java-http-client/17.0.9":                "Java",
		"Apache-HttpClient/4.5.14 (Java/17.0.9)": "Apache HttpClient",
		"Dart/3.2 (dart:io)":                     "Dart",
		"Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.3803":                                                                                    "PowerShell",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 OPT/4.3.2 Mobile/15E148 Safari/604.1":                    "Opera on iPhone",
		"Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.14977": "Edge on Windows Mobile",
		// A browser named after the client list is not a client unless first.
		"Mozilla/5.0 (X11; Linux x86_64) curl/8.4.0": "Linux",
	}
	for ua, want := range cases {
		if got := Device(ua); got != want {
			t.Errorf("Device(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestDeviceInfoString(t *testing.T) {
	cases := []struct {
		in   DeviceInfo
		want string
	}{
		{DeviceInfo{}, ""},
		{DeviceInfo{Browser: "Safari", Platform: "iPhone"}, "Safari on iPhone"},
		// Pairs outside the precomputed table still read naturally.
		{DeviceInfo{Browser: "Lynx", Platform: "Haiku"}, "Lynx on Haiku"},
		{DeviceInfo{Browser: "Lynx"}, "Lynx"},
		{DeviceInfo{Platform: "Linux"}, "Linux"},
		{DeviceInfo{Browser: "Googlebot", Platform: "Android", Bot: true}, "Googlebot"},
	}
	for _, c := range cases {
		if got := c.in.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDeviceReadsOnlyTheTruncatedPrefix(t *testing.T) {
	// A bot token outranks a client, so if Device read past the limit the
	// answer would be "Googlebot".
	huge := "curl/8.4.0 " + strings.Repeat("x", 1<<20) + " Googlebot/2.1"
	if got := Device(huge); got != "curl" {
		t.Errorf("Device(1 MB) = %q, want %q", got, "curl")
	}
	// A browser token just past the limit is not seen either.
	pad := strings.Repeat("a", MaxUserAgentLength)
	ua := "Mozilla/5.0 (Windows NT 10.0) " + pad + " Chrome/120.0"
	if got := Device(ua); got != "Windows" {
		t.Errorf("Device(long) = %q, want %q", got, "Windows")
	}
	if got := ParseDevice(huge); got.Browser != "curl" {
		t.Errorf("ParseDevice(1 MB).Browser = %q, want curl", got.Browser)
	}
}

func TestDeviceGarbage(t *testing.T) {
	inputs := []string{
		"(", ")", "((((", "))))", "/", "//", ";;;", "MSIE", "MSIE ", "rv:", "Trident/",
		"Version/", "Mozilla/5.0 (", "Mozilla/5.0 (compatible; MSIE", "Opera/", "\x00\x01\x02",
		strings.Repeat("(", 2*MaxUserAgentLength), strings.Repeat("Chrome/1 ", 200),
		strings.Repeat("é", MaxUserAgentLength), "Mozilla/5.0 (iPhone; CPU iPhone OS \xff like Mac OS X)",
		"Mozilla/5.0 (Windows NT 99999999999999999999999999999999999999999999999999)",
		strings.Repeat("bot/", 300), "Opera/9.80 (" + strings.Repeat(";", 600),
	}
	for _, in := range inputs {
		checkDeviceInvariants(t, in)
	}
}

// checkDeviceInvariants asserts what holds for every input: Device equals
// ParseDevice.String, and every field is short valid UTF-8.
func checkDeviceInvariants(t *testing.T, ua string) {
	t.Helper()
	d := Device(ua)
	info := ParseDevice(ua)
	if s := info.String(); s != d {
		t.Errorf("Device(%q) = %q, ParseDevice.String = %q", ua, d, s)
	}
	for _, f := range []string{d, info.Browser, info.BrowserVersion, info.Platform, info.OSVersion} {
		if !utf8.ValidString(f) {
			t.Errorf("ParseDevice(%q): invalid UTF-8 %q", ua, f)
		}
		// Longest answer: a 40-byte name, or "Internet Explorer on Windows Mobile".
		if len(f) > 64 {
			t.Errorf("ParseDevice(%q): %d-byte field %q", ua, len(f), f)
		}
	}
	if info.Bot && (info.Platform != "" || info.Browser == "") {
		t.Errorf("ParseDevice(%q) = %+v: a bot must have a name and no platform", ua, info)
	}
}

func TestDeviceDoesNotAllocate(t *testing.T) {
	ua := modernDevices[0].ua
	if n := testing.AllocsPerRun(100, func() { _ = Device(ua) }); n != 0 {
		t.Errorf("Device(%q) allocates %v times per call, want 0", ua, n)
	}
}

func TestTruncateUserAgent(t *testing.T) {
	if s := "short"; TruncateUserAgent(s) != s {
		t.Errorf("TruncateUserAgent(%q) changed it", s)
	}
	exact := strings.Repeat("a", MaxUserAgentLength)
	if TruncateUserAgent(exact) != exact {
		t.Error("a string of exactly MaxUserAgentLength bytes was cut")
	}
	// "é" is two bytes; an odd prefix puts the limit inside one.
	long := "x" + strings.Repeat("é", MaxUserAgentLength)
	got := TruncateUserAgent(long)
	if len(got) > MaxUserAgentLength || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Errorf("TruncateUserAgent: %d bytes, valid UTF-8 %v, prefix %v",
			len(got), utf8.ValidString(got), strings.HasPrefix(long, got))
	}
	if len(got) != MaxUserAgentLength-1 {
		t.Errorf("TruncateUserAgent cut to %d bytes, want %d (one byte back to the rune start)", len(got), MaxUserAgentLength-1)
	}
}

var deviceSink string

func BenchmarkDevice(b *testing.B) {
	for _, c := range []struct{ name, ua string }{
		{"chrome-windows", modernDevices[0].ua},
		{"safari-iphone", djangoDeviceVectors[6].ua},
		{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{"1MB", strings.Repeat("Mozilla/5.0 (X11) ", 1<<16)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				deviceSink = Device(c.ua)
			}
		})
	}
}

func BenchmarkParseDevice(b *testing.B) {
	ua := modernDevices[1].ua
	b.ReportAllocs()
	for b.Loop() {
		deviceSink = ParseDevice(ua).OSVersion
	}
}

// TestDeviceIssue11 holds the defects of issue 11, items 12 and 15, and the
// faults of the same kind found next to them. Each case failed before its
// fix.
func TestDeviceIssue11(t *testing.T) {
	cases := []struct{ name, ua, want string }{
		// Item 12: a bare browser name is named; django-user-sessions'
		// view test sends "Firefox".
		{"bare firefox", "Firefox", "Firefox"},
		{"bare chrome", "Chrome", "Chrome"},
		{"bare safari", "Safari", "Safari"},
		{"bare edge", "Edge", "Edge"},
		{"bare opera", "Opera", "Opera"},
		{"bare name with version", "Firefox 121.0", "Firefox"},

		// Item 15: Opera wherever it names itself.
		{"opera disguised as msie", "Mozilla/4.0 (compatible; MSIE 5.0; Windows 2000) Opera 6.12 [en]", "Opera on Windows"},
		{"opera disguised as firefox", "Mozilla/5.0 (Android 2.2.2; Linux; Opera Mobi/ADR-1103311355; U; en; rv:1.9.1.6) Gecko/20091201 Firefox/3.5.6 Opera 11.00", "Opera on Android"},
		{"opera mini", "Mozilla/5.0 (Linux; U; Android 4.2.2; en-US) Opera Mini/7.5.33361/31.1448 Mobile", "Opera on Android"},
		{"opera mobi", "Mozilla/5.0 (S60; SymbOS; Opera Mobi/SYB-1107071606; U; en) Presto/2.8.149 Version/11.10", "Opera"},
		{"opera mobile windows ce", "Mozilla/4.0 (compatible; MSIE 6.0; Windows CE; PPC; 240x320) Opera 8.65 [en]", "Opera on Windows Mobile"},

		// Item 15: UC Browser in all its spellings.
		{"ucweb", "UCWEB/2.0 (MIDP-2.0; U; Adr 4.0.4; en-US; ZTE_U795) U2/1.0.0 Mobile", "UC Browser on Android"},
		{"ucweb with build", "NOKIA5700/ UCWEB7.0.2.37/28/999", "UC Browser"},
		{"uc browser with a space", "Mozilla/5.0 (Linux; U; Android 4.2.2; en-US; Micromax A116 Build/JDQ39) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 UC Browser/9.8.0.435 U3/0.8.0 Mobile Safari/534.30", "UC Browser on Android"},
		{"bare ucbrowser", "UCWEB/2.0 (MIDP-2.0; U; Adr 9.0.0) UCBrowser U2/1.0.0 Gecko/63.0 Firefox/63.0", "UC Browser on Android"},

		// Item 15: the device, not the OS name, tells an iPad.
		{"ipad sending iphone os", "Mozilla/5.0 (iPad; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1", "Safari on iPad"},
		{"ipad app sending iphone os", "Mozilla/5.0 (iPad; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "iPad"},
		{"only the os name", "Mozilla/5.0 (CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "iPhone"},

		// Item 15: crawlers without "bot" and a version.
		{"petalbot", "Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)", "PetalBot"},
		{"google-inspectiontool", "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)", "Google-InspectionTool"},
		{"google-inspectiontool mobile", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.216 Mobile Safari/537.36 (compatible; Google-InspectionTool/1.0;)", "Google-InspectionTool"},
		{"bingpreview", "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/39.0.2171.95 Safari/537.36 BingPreview/1.0b", "BingPreview"},
		{"bytespider", "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)", "Bytespider"},
		{"adsbot mobile", "Mozilla/5.0 (Linux; Android 5.0; SM-G920A) AppleWebKit (KHTML, like Gecko) Chrome Mobile Safari (compatible; AdsBot-Google-Mobile; +http://www.google.com/mobile/adsbot.html)", "AdsBot-Google-Mobile"},

		// Item 15: "bot" inside another word is not a bot.
		{"boto3", "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#5.15.0-1051-aws md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.0", "Boto3"},
		{"botocore", "botocore/1.31.0 Python/3.11.4 Linux/5.15.0", "botocore"},
		{"aws cli v1", "aws-cli/1.29.0 Python/3.11.4 Linux/5.15.0-1040-aws botocore/1.31.0", "AWS CLI"},
		{"cubot with a slash", "CUBOT_X30/1.0 Linux/4.14.141 Android/10 Release/03.2021", "Android"},

		// Item 15: HeadlessChrome outranks Chromium, as documented.
		{"headless after chromium", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/120.0.0.0 HeadlessChrome/120.0.0.0 Safari/537.36", "Headless Chrome on Linux"},
		// The same fault between the other vendor rows: Samsung Internet
		// outranks Yandex Browser wherever each stands.
		{"yandex before samsung", "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) YaBrowser/23.1.0.0 SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", "Samsung Internet on Android"},
		{"chromium before vivaldi", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/120.0.0.0 Chrome/120.0.0.0 Safari/537.36 Vivaldi/6.5.3206.48", "Vivaldi on Linux"},

		// Same class: Chrome's old Android token, and Windows CE phones.
		{"crmo", "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; Galaxy Nexus Build/IML74K) AppleWebKit/535.7 (KHTML, like Gecko) CrMo/16.0.912.75 Mobile Safari/535.7", "Chrome on Android"},
		{"windows ce", "Mozilla/4.0 (compatible; MSIE 6.0; Windows CE; IEMobile 7.11)", "Internet Explorer on Windows Mobile"},

		// What must not change: a device model with a browser's name is
		// not the browser, and a phone named Cubot is not a bot.
		{"edge phone", "Mozilla/5.0 (Linux; Android 12; motorola Edge 30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
		{"cubot", "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
		{"msie after compatible is not a bot", "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)", "Internet Explorer on Windows"},
	}
	for _, c := range cases {
		if got := Device(c.ua); got != c.want {
			t.Errorf("%s: Device(%q) = %q, want %q", c.name, c.ua, got, c.want)
		}
		if got, s := Device(c.ua), ParseDevice(c.ua).String(); got != s {
			t.Errorf("%s: Device = %q but ParseDevice.String = %q", c.name, got, s)
		}
	}
}

// TestDeviceBotFlag checks ParseDevice's Bot flag where Device's answer
// alone cannot tell: "Boto3" is the right name for the AWS SDK, but not as
// a bot.
func TestDeviceBotFlag(t *testing.T) {
	cases := []struct {
		ua  string
		bot bool
	}{
		{"Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#5.15.0-1051-aws md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.0", false},
		{"botocore/1.31.0 Python/3.11.4 Linux/5.15.0", false},
		{"Boto/2.49.0 Python/3.8.10 Linux/5.4.0-1045-aws", false},
		{"aws-cli/1.29.0 Python/3.11.4 Linux/5.15.0-1040-aws botocore/1.31.0", false},
		{"CUBOT_X30/1.0 Linux/4.14.141 Android/10 Release/03.2021", false},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", true},
		{"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", true},
		{"Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", false},
		{"Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", true},
		{"Mozilla/5.0 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)", true},
		{"Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)", true},
	}
	for _, c := range cases {
		if got := ParseDevice(c.ua); got.Bot != c.bot {
			t.Errorf("ParseDevice(%q) = %#v, want Bot %v", c.ua, got, c.bot)
		}
	}
}

// userAgentTablePath holds several hundred real-world user agents with the
// name Device must give each; see loadUserAgentTable for the format.
const userAgentTablePath = "testdata/useragents.tsv"

type userAgentRow struct {
	line     int
	ua, want string
}

// loadUserAgentTable reads userAgentTablePath: a header line, then one
// "user agent<TAB>expected" per line, NONE for "", with blank lines and
// lines starting with '#' skipped.
func loadUserAgentTable(tb testing.TB) []userAgentRow {
	tb.Helper()
	data, err := os.ReadFile(userAgentTablePath)
	if err != nil {
		tb.Fatal(err)
	}
	var rows []userAgentRow
	header := false
	seen := make(map[string]int)
	for i, text := range strings.Split(string(data), "\n") {
		line := i + 1
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if !header {
			if text != "user_agent\texpected" {
				tb.Fatalf("%s:%d: header %q, want %q", userAgentTablePath, line, text, "user_agent\texpected")
			}
			header = true
			continue
		}
		ua, want, ok := strings.Cut(text, "\t")
		if !ok || ua == "" || want == "" || strings.Contains(want, "\t") {
			tb.Fatalf("%s:%d: want \"user agent<TAB>expected\", got %q", userAgentTablePath, line, text)
		}
		if prev, dup := seen[ua]; dup {
			tb.Fatalf("%s:%d: user agent already on line %d", userAgentTablePath, line, prev)
		}
		seen[ua] = line
		if want == "NONE" {
			want = ""
		}
		rows = append(rows, userAgentRow{line, ua, want})
	}
	return rows
}

// TestDeviceUserAgentTable runs Device over a large body of real user
// agents rather than hand-picked ones: browsers old and new on every
// platform, in-app browsers, crawlers, link-preview fetchers, HTTP clients
// and SDKs.
func TestDeviceUserAgentTable(t *testing.T) {
	rows := loadUserAgentTable(t)
	// The table must stay large; a truncated file would pass vacuously.
	if len(rows) < 400 {
		t.Fatalf("%s: %d rows, want at least 400", userAgentTablePath, len(rows))
	}
	bots := 0
	for _, r := range rows {
		if got := Device(r.ua); got != r.want {
			t.Errorf("%s:%d: Device(%q) = %q, want %q", userAgentTablePath, r.line, r.ua, got, r.want)
		}
		checkDeviceInvariants(t, r.ua)
		if ParseDevice(r.ua).Bot {
			bots++
		}
	}
	// Both kinds must be present in bulk for the table to test the bot rules.
	if bots < 50 || len(rows)-bots < 300 {
		t.Errorf("%s: %d bots and %d others, want at least 50 and 300", userAgentTablePath, bots, len(rows)-bots)
	}
}
