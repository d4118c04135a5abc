package usersessions

import (
	"strings"
	"unicode/utf8"

	"github.com/mssola/useragent"
)

// MaxUserAgentLength is the longest user agent, in bytes, that the Store keeps
// and that Device parses. Longer strings are cut at a UTF-8 boundary: real
// browsers send well under 512 bytes, and the limit keeps a hostile client from
// bloating every record and every parse.
const MaxUserAgentLength = 512

// TruncateUserAgent returns ua cut to at most MaxUserAgentLength bytes, never
// splitting a UTF-8 sequence.
func TruncateUserAgent(ua string) string {
	if len(ua) <= MaxUserAgentLength {
		return ua
	}
	cut := MaxUserAgentLength
	// Step back over continuation bytes so the result stays valid UTF-8.
	for cut > 0 && !utf8.RuneStart(ua[cut]) {
		cut--
	}
	return ua[:cut]
}

// DeviceInfo is what a user agent says about the software and device behind a
// session. Every field is empty or false when the user agent does not say.
// Names come from fixed tables, so they are safe to show; versions and bot
// names are copied from the user agent but limited to letters, digits, '.',
// '_' and '-', at most 40 bytes.
type DeviceInfo struct {
	// Browser is the browser's display name ("Chrome", "Safari", "Samsung
	// Internet"), the bot's name when Bot is set ("Googlebot"), or the name
	// of a command-line or library HTTP client ("curl", "python-requests").
	Browser string
	// BrowserVersion is the version the browser, bot or client reports
	// ("120.0.6099.119"). For Safari it is the Version/ token (the Safari/
	// token holds a WebKit build number), for Internet Explorer the MSIE or
	// rv: number.
	BrowserVersion string
	// Platform is the operating system family: "Windows", "Windows Mobile",
	// "Android", "Linux", "ChromeOS", "iPhone", "iPad", "iPod" or "macOS".
	// It is empty for bots and HTTP clients: crawlers imitate devices they do
	// not run on, and clients rarely say where they run.
	Platform string
	// OSVersion is the operating system version as sent ("17.1" for iOS,
	// "10.15.7" for macOS, "13" for Android). For Windows it is the NT
	// version: "10.0" is Windows 10 or 11, which user agents cannot tell
	// apart. Modern browsers freeze these numbers (Safari and Chrome say
	// macOS 10.15.7, Chrome on Android says 10), so treat them as hints.
	OSVersion string
	// Mobile reports a phone or tablet: always for the iPhone, iPad, iPod,
	// Android and Windows Mobile platforms, and from the user agent's own
	// hints (a "Mobile" token) when the platform is unknown.
	Mobile bool
	// Bot reports a crawler or link-preview fetcher; Browser then holds its
	// name.
	Bot bool
}

// String returns the same short description as Device: the bot's name for a
// bot, otherwise "Browser on Platform", the browser alone, the platform
// alone, or "" when both are unknown.
func (d DeviceInfo) String() string {
	switch {
	case d.Bot:
		return d.Browser
	case d.Browser != "" && d.Platform != "":
		// Known pairs are precomputed so that Device does not allocate on
		// the rendering path of a session list.
		if s, ok := deviceLabels[[2]string{d.Browser, d.Platform}]; ok {
			return s
		}
		return d.Browser + " on " + d.Platform
	case d.Browser != "":
		return d.Browser
	default:
		return d.Platform
	}
}

// Device returns a short description of the device behind a user agent, for
// lists of sessions: "Chrome on Windows", "Safari on iPhone", "Firefox" (no
// platform in the user agent), "Linux" (no browser), "Googlebot", "curl", or
// "" when nothing is recognised. It equals ParseDevice(ua).String() but skips
// the version and mobile details, so it needs no allocation for known
// browsers and platforms.
//
// Only the first MaxUserAgentLength bytes of ua are read (see
// TruncateUserAgent), so a huge or hostile header costs no more than a normal
// one, and any input, valid UTF-8 or not, is safe.
//
// The answer is compatible with the device filter of django-user-sessions
// for the user agents in its test suite, and reads today's browsers better.
// A token is a run of bytes between spaces, parentheses, ';' and ','; its
// name is the part before the first '/'. Rules, first match wins:
//
//	Rule                                      Example token               Answer
//	1. Known crawlers and link-preview        facebookexternalhit/1.1     "facebookexternalhit"
//	   fetchers, anywhere, with or without    BingPreview/1.0b            "BingPreview"
//	   a version: facebookexternalhit, facebookcatalog, TelegramBot, Slackbot,
//	   Slackbot-LinkExpanding, Google-InspectionTool, GoogleOther,
//	   Mediapartners-Google, APIs-Google, FeedFetcher-Google,
//	   Google-Read-Aloud, Google-Site-Verification, Google-Safety,
//	   BingPreview, MicrosoftPreview, Slurp, ia_archiver, Qwantify, WhatsApp,
//	   SkypeUriPreview, Embedly, Iframely, vkShare, ChatGPT-User, Claude-Web,
//	   anthropic-ai, Perplexity-User, Scrapy, YandexImages, YandexMetrika, Yeti
//	2. Bots: a token whose name holds spider  Baiduspider/2.0, 360Spider  "Baiduspider", "360Spider"
//	   or crawler, anywhere; or whose name    Googlebot/2.1, bingbot/2.0  "Googlebot", "bingbot"
//	   holds the word bot (not followed by    (compatible; PetalBot;      "PetalBot"
//	   a letter) and that has a version, comes first, or follows
//	   "compatible"; all in any case. Phone models such as "CUBOT X30"
//	   have none of these, and names starting with Cubot never count;
//	   "Boto3" and "botocore" are not bots.
//	3. HTTP clients: the first token is one   curl/8.4.0, Wget/1.21       "curl", "Wget"
//	   of curl, Wget, HTTPie, Go-http-client, python-requests,
//	   Python-urllib, python-urllib3, python-httpx, okhttp ("OkHttp"),
//	   PostmanRuntime ("Postman"), insomnia ("Insomnia"), axios,
//	   node-fetch, undici, node ("Node.js"), Deno, Bun, libwww-perl, Java,
//	   Java-http-client ("Java"), Apache-HttpClient ("Apache HttpClient"),
//	   GuzzleHttp ("Guzzle"), Dart, Ruby, Faraday, RestSharp, Boto3, Boto,
//	   botocore or Botocore ("botocore"), aws-cli ("AWS CLI"), aws-sdk-go
//	   and aws-sdk-go-v2 ("AWS SDK for Go"), aws-sdk-java ("AWS SDK for
//	   Java"), aws-sdk-js and aws-sdk-nodejs ("AWS SDK for JavaScript"); or
//	   a PowerShell or
//	   WindowsPowerShell token anywhere ("PowerShell"), or an aiohttp token
//	   anywhere ("aiohttp", after "Python/3.11")
//	4. Otherwise browser "on" platform, each part from the tables below.
//
// Browsers, the highest row present wins wherever its token stands
// (Chromium-based browsers also send Chrome and Safari tokens, Chrome and
// Firefox on iOS also send Safari). A token counts with a version
// ("Chrome/120.0"), or bare as the first token ("Firefox", "Chrome 120");
// MSIE, Opera and UCBrowser count bare anywhere ("MSIE 10.0", "Opera 6.12",
// "Opera Mini/7.5", "Opera Mobi/ADR-...").
//
//	Token(s)                                  Browser
//	Edg, EdgA, EdgiOS, Edge                   Edge
//	OPR, OPT, OPiOS, Opera                    Opera (also where it poses as MSIE or Firefox)
//	SamsungBrowser                            Samsung Internet
//	YaBrowser                                 Yandex Browser
//	Vivaldi                                   Vivaldi
//	UCBrowser, UC Browser/x                   UC Browser
//	UCWEB (UCWEB/2.0, UCWEB7.0.2.37)          UC Browser
//	HeadlessChrome                            Headless Chrome
//	Chromium                                  Chromium
//	Chrome, CriOS, CrMo                       Chrome
//	Firefox, FxiOS                            Firefox
//	MSIE, Trident                             Internet Explorer
//	Safari                                    Safari (also Android's old stock browser, as django-user-sessions says)
//
// Platforms, substrings anywhere in the user agent, first match wins:
//
//	Substring                                 Platform
//	Windows Phone, Windows Mobile, Windows CE Windows Mobile
//	CrOS                                      ChromeOS
//	Android, "; Adr " (UC Browser's spelling) Android
//	Linux                                     Linux
//	iPod                                      iPod
//	iPhone, except in "iPhone OS"             iPhone
//	iPad                                      iPad
//	iPhone OS                                 iPhone (iPods and some iPads send "CPU iPhone OS" too,
//	                                          so the device's own name comes first)
//	Mac OS X, Macintosh                       macOS, or iPad with an iOS-only browser token
//	                                          (CriOS, FxiOS, EdgiOS, OPiOS): iPads in desktop mode claim to be Macs
//	Windows                                   Windows (no version: 11 and 10 send the same)
//
// Safari on an iPad in desktop mode sends exactly what Safari on a Mac sends,
// so it reads as "Safari on macOS". Brave, Arc and other browsers that hide
// behind Chrome's user agent read as Chrome.
func Device(ua string) string {
	info, _ := classifyUserAgent(TruncateUserAgent(ua))
	return info.String()
}

// ParseDevice returns what ua says about the browser and device: the names
// Device uses (same rules, same truncation to MaxUserAgentLength) plus
// versions and the mobile flag. Operating system versions and mobile hints
// come from github.com/mssola/useragent, checked against the platform found
// by Device's rules so that a misread user agent gives an empty version
// rather than a wrong one.
func ParseDevice(ua string) DeviceInfo {
	ua = TruncateUserAgent(ua)
	info, scan := classifyUserAgent(ua)
	if info.Bot || scan.client {
		return info
	}
	switch info.Platform {
	case "iPhone", "iPad", "iPod", "Android", "Windows Mobile":
		info.Mobile = true
	}
	switch info.Platform {
	case "Windows":
		// mssola/useragent turns NT 10.0 into "Windows 10", which is wrong
		// for Windows 11, so report the NT version as sent.
		info.OSVersion = windowsNTVersion(ua)
	case "Linux":
		// Linux user agents carry an architecture, never a version.
	case "":
		if info.Browser == "" {
			return info
		}
		// No platform: only the mobile hint is worth asking for.
		info.Mobile = useragent.New(ua).Mobile()
	default:
		osi := useragent.New(ua).OSInfo()
		if osNameMatches(info.Platform, osi.Name) {
			info.OSVersion = cleanToken(osi.Version)
		}
	}
	return info
}

// osNameMatches reports whether the operating system name mssola/useragent
// parsed belongs to platform, so its version can be trusted.
func osNameMatches(platform, name string) bool {
	switch platform {
	case "Android":
		return name == "Android"
	case "iPhone", "iPad", "iPod":
		// "CPU iPhone OS 17_1 like Mac OS X" and "CPU OS 17_1 like Mac OS X".
		return name == "iPhone OS" || name == "OS"
	case "macOS":
		return name == "Mac OS X"
	case "ChromeOS":
		// "CrOS x86_64 14541.0.0": the name keeps the architecture.
		return strings.HasPrefix(name, "CrOS")
	case "Windows Mobile":
		return strings.HasPrefix(name, "Windows Phone") || strings.HasPrefix(name, "Windows Mobile")
	}
	return false
}

// windowsNTVersion returns the x.y of "Windows NT x.y" in ua, or "".
func windowsNTVersion(ua string) string {
	const marker = "Windows NT "
	i := strings.Index(ua, marker)
	if i < 0 {
		return ""
	}
	rest := ua[i+len(marker):]
	end := 0
	for end < len(rest) && end < maxTokenLength && (rest[end] == '.' || rest[end] >= '0' && rest[end] <= '9') {
		end++
	}
	return rest[:end]
}

// maxTokenLength bounds the versions and bot names copied from a user agent.
const maxTokenLength = 40

// cleanToken returns s if it is a plausible name or version (ASCII letters,
// digits, '.', '_', '-', at most maxTokenLength bytes), else "". Everything
// copied from a user agent into a DeviceInfo passes through it, so the
// result is always short, valid UTF-8 and free of markup.
func cleanToken(s string) string {
	if len(s) > maxTokenLength {
		return ""
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return ""
		}
	}
	return s
}

func isTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// Browser ranks: a lower rank wins when a user agent holds several browser
// tokens, as Chromium-based browsers do. Every row of Device's browser table
// has a rank of its own, so the table's order decides, never the order of
// the tokens in the user agent.
const (
	rankEdge = iota + 1
	rankOpera
	rankSamsung
	rankYandex
	rankVivaldi
	rankUC
	rankUCWEB // UCWEB/2.0 names UC Browser but carries a protocol version
	rankHeadless
	rankChromium
	rankChrome
	rankFirefox
	rankIE
	rankSafari
	rankNone
)

// browserToken maps a product token's name to a browser and its rank.
// iOS reports tokens that only exist in iOS browsers.
func browserToken(name string) (browser string, rank int, iOS bool) {
	switch name {
	case "Edg", "EdgA", "Edge":
		return "Edge", rankEdge, false
	case "EdgiOS":
		return "Edge", rankEdge, true
	case "OPR", "OPT", "Opera":
		return "Opera", rankOpera, false
	case "OPiOS":
		return "Opera", rankOpera, true
	case "SamsungBrowser":
		return "Samsung Internet", rankSamsung, false
	case "YaBrowser":
		return "Yandex Browser", rankYandex, false
	case "Vivaldi":
		return "Vivaldi", rankVivaldi, false
	case "UCBrowser":
		return "UC Browser", rankUC, false
	case "HeadlessChrome":
		return "Headless Chrome", rankHeadless, false
	case "Chromium":
		return "Chromium", rankChromium, false
	case "Chrome", "CrMo":
		return "Chrome", rankChrome, false
	case "CriOS":
		return "Chrome", rankChrome, true
	case "Firefox":
		return "Firefox", rankFirefox, false
	case "FxiOS":
		return "Firefox", rankFirefox, true
	case "MSIE", "Trident":
		return "Internet Explorer", rankIE, false
	case "Safari":
		return "Safari", rankSafari, false
	}
	return "", rankNone, false
}

// bareBrowserToken reports the browser tokens that count without a
// "/version" anywhere in a user agent: "MSIE 10.0", Opera's "Opera 6.12",
// "Opera Mini/7.5" and "Opera Mobi/ADR-..." (which split into "Opera" and
// a second token), and "UCBrowser U2/1.0.0". Other browser names count
// bare only as the first token ("Firefox"), so a phone model such as
// "motorola Edge 30" does not name a browser.
func bareBrowserToken(name string) bool {
	return name == "MSIE" || name == "Opera" || name == "UCBrowser"
}

// clientName maps the first token of a command-line or library HTTP
// client's user agent to the name shown, or returns "".
func clientName(token string) string {
	switch token {
	case "curl", "Wget", "HTTPie", "Go-http-client", "python-requests", "Python-urllib",
		"python-urllib3", "python-httpx", "axios", "node-fetch", "undici", "libwww-perl",
		"Java", "Dart", "Deno", "Bun", "Ruby", "Faraday", "RestSharp", "Boto3", "Boto":
		return token
	case "okhttp":
		return "OkHttp"
	case "PostmanRuntime":
		return "Postman"
	case "insomnia":
		return "Insomnia"
	case "Java-http-client":
		return "Java"
	case "Apache-HttpClient":
		return "Apache HttpClient"
	case "GuzzleHttp":
		return "Guzzle"
	case "node":
		return "Node.js"
	case "botocore", "Botocore":
		return "botocore"
	case "aws-cli":
		return "AWS CLI"
	case "aws-sdk-go", "aws-sdk-go-v2":
		return "AWS SDK for Go"
	case "aws-sdk-java":
		return "AWS SDK for Java"
	case "aws-sdk-js", "aws-sdk-nodejs":
		return "AWS SDK for JavaScript"
	}
	return ""
}

// clientAnywhere maps the tokens that name an HTTP client wherever they
// stand to the name shown, or returns "": PowerShell puts a browser-like
// prefix first, aiohttp puts "Python/3.11" first.
func clientAnywhere(name string) string {
	switch name {
	case "PowerShell", "WindowsPowerShell":
		return "PowerShell"
	case "aiohttp":
		return "aiohttp"
	}
	return ""
}

// isKnownCrawler reports crawlers and link-preview fetchers whose names do
// not say bot, spider or crawler ("Google-InspectionTool", "BingPreview"),
// or that come without a version in a place rule 2 does not look
// ("Mozilla/5.0 (compatible; Yahoo! Slurp; ...)"), so rule 2 would miss
// them.
func isKnownCrawler(name string) bool {
	switch name {
	case "facebookexternalhit", "facebookcatalog", "TelegramBot", "Slackbot", "Slackbot-LinkExpanding",
		"Google-InspectionTool", "GoogleOther", "Mediapartners-Google", "APIs-Google",
		"FeedFetcher-Google", "Google-Read-Aloud", "Google-Site-Verification", "Google-Safety",
		"BingPreview", "MicrosoftPreview", "Slurp", "ia_archiver", "Qwantify", "WhatsApp",
		"SkypeUriPreview", "Embedly", "Iframely", "vkShare", "ChatGPT-User", "Claude-Web",
		"anthropic-ai", "Perplexity-User", "Scrapy", "YandexImages", "YandexMetrika", "Yeti":
		return true
	}
	return false
}

// isBotName reports whether a token's name holds the word bot, in any
// case, not followed by a letter: "Googlebot", "AdsBot-Google", "MJ12bot",
// but not the AWS SDKs "Boto3" and "botocore". Cubot phones are not bots.
func isBotName(name string) bool {
	if len(name) < 3 || cleanToken(name) == "" || hasPrefixFold(name, "cubot") {
		return false
	}
	return containsWordFold(name, "bot")
}

// isSpiderName reports whether a token's name holds spider or crawler, in
// any case: "Baiduspider", "360Spider", "Yeti-Crawler". No device or
// browser is named so, so these count wherever they stand.
func isSpiderName(name string) bool {
	// One pass, as every token of every user agent comes here.
	for i := 0; i+len("spider") <= len(name); i++ {
		switch name[i] | 0x20 {
		case 's':
			if hasPrefixFold(name[i:], "spider") {
				return cleanToken(name) != ""
			}
		case 'c':
			if hasPrefixFold(name[i:], "crawler") {
				return cleanToken(name) != ""
			}
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring ASCII case, without allocating.
func containsFold(s, sub string) bool {
	return indexFold(s, sub, false) >= 0
}

// containsWordFold is containsFold for a sub that is not followed by an
// ASCII letter: "Googlebot", "AdsBot-Google", "MJ12bot" but not "Boto3".
func containsWordFold(s, sub string) bool {
	return indexFold(s, sub, true) >= 0
}

// indexFold returns the index of the first match of the lower-case ASCII
// sub in s, ignoring ASCII case, or -1. With wordEnd, a match followed by
// an ASCII letter does not count.
func indexFold(s, sub string, wordEnd bool) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for j < len(sub) && s[i+j]|0x20 == sub[j] {
			j++
		}
		if j < len(sub) {
			continue
		}
		if end := i + len(sub); wordEnd && end < len(s) && (s[end]|0x20 >= 'a' && s[end]|0x20 <= 'z') {
			continue
		}
		return i
	}
	return -1
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix,
// ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if s[i]|0x20 != prefix[i] {
			return false
		}
	}
	return true
}

// uaScan holds what classifyUserAgent saw besides the answer.
type uaScan struct {
	client bool // rule 3 matched
}

// isTokenSeparator reports the bytes that end a product token.
func isTokenSeparator(c byte) bool {
	return c == ' ' || c == '(' || c == ')' || c == ';' || c == ','
}

// classifyUserAgent applies Device's rules to an already truncated ua in one
// pass over its tokens (runs of bytes between spaces, parentheses, ';' and
// ','). It allocates only for the names of bots, which are cloned so the
// result does not keep the whole header alive.
func classifyUserAgent(ua string) (DeviceInfo, uaScan) {
	c := uaClassifier{rank: rankNone}
	for i, n := 0, 0; i < len(ua); {
		if isTokenSeparator(ua[i]) {
			i++
			continue
		}
		start := i
		for i < len(ua) && !isTokenSeparator(ua[i]) {
			i++
		}
		if bot, ok := c.token(ua[start:i], n); ok {
			return bot, uaScan{}
		}
		n++ // tokens seen: rules 2 and 3 look at the first one
	}
	if c.scan.client {
		return c.info, c.scan
	}
	c.fixVersion(ua)
	c.info.Platform = platformOf(ua)
	if c.iOS && c.info.Platform == "macOS" {
		c.info.Platform = "iPad"
	}
	return c.info, c.scan
}

// uaClassifier is classifyUserAgent's state while it walks the tokens.
type uaClassifier struct {
	info     DeviceInfo
	scan     uaScan
	rank     int // of the browser found so far: lower wins
	iOS      bool
	prevName string // previous token, for "MSIE 10.0", "Opera 6.12", "UC Browser/9.8"
	version  string // Version/x.y: Safari's and Presto Opera's real version
	msie     string // the number after MSIE
	rv       string // rv:11.0, Internet Explorer 11's version
	opera    string // the number after a bare Opera: "Opera 6.12", "Opera Mini/7.5"
}

// token takes the n-th token tok. It returns the result and true when tok
// is a bot's, which ends the walk.
func (c *uaClassifier) token(tok string, n int) (DeviceInfo, bool) {
	name, ver, hasSlash := strings.Cut(tok, "/")

	// Rules 1 and 2: a bot token wins over everything, wherever it is.
	if isKnownCrawler(name) || isSpiderName(name) || (hasSlash || n == 0 || c.prevName == "compatible") && isBotName(name) {
		return DeviceInfo{
			Browser:        strings.Clone(name),
			BrowserVersion: strings.Clone(cleanToken(ver)),
			Bot:            true,
		}, true
	}
	// Rule 3: HTTP clients. Keep scanning, as a bot token later on still
	// wins; rank 0 keeps browser tokens from replacing the client.
	client := ""
	if n == 0 {
		client = clientName(name)
	}
	if client == "" && c.rank > 0 {
		client = clientAnywhere(name)
	}
	if client != "" {
		c.scan.client = true
		c.info.Browser, c.info.BrowserVersion, c.rank = client, cleanToken(ver), 0
	}
	c.remember(tok, name, ver, hasSlash)
	switch browser, r, ios := browserToken(name); {
	case r < c.rank && (hasSlash || n == 0 || bareBrowserToken(name)):
		c.info.Browser, c.info.BrowserVersion, c.rank, c.iOS = browser, cleanToken(ver), r, ios
	case c.prevName == "UC" && name == "Browser" && hasSlash && rankUC < c.rank:
		// "UC Browser/9.8.0.435"
		c.info.Browser, c.info.BrowserVersion, c.rank, c.iOS = "UC Browser", cleanToken(ver), rankUC, false
	case strings.HasPrefix(name, "UCWEB") && rankUCWEB < c.rank:
		// "UCWEB/2.0" (a protocol version) or "UCWEB7.0.2.37/28/999".
		c.info.Browser, c.info.BrowserVersion, c.rank, c.iOS = "UC Browser", cleanToken(name[len("UCWEB"):]), rankUCWEB, false
	}
	c.prevName = name
	return DeviceInfo{}, false
}

// remember keeps the version numbers that fixVersion may need: they come
// in tokens other than the browser's own.
func (c *uaClassifier) remember(tok, name, ver string, hasSlash bool) {
	switch {
	case name == "Version" && hasSlash:
		c.version = ver
	case c.prevName == "MSIE":
		c.msie = tok
	case strings.HasPrefix(tok, "rv:"):
		c.rv = tok[len("rv:"):]
	case c.prevName == "Opera" && c.opera == "":
		// "Opera 6.12", or "Opera Mini/7.5.33361/31.1448".
		v := tok
		if name == "Mini" || name == "Mobi" {
			v, _, _ = strings.Cut(ver, "/")
		}
		if v != "" && v[0] >= '0' && v[0] <= '9' {
			c.opera = v
		}
	}
}

// fixVersion replaces a browser version that is really an engine's with
// the one the browser states elsewhere in ua.
func (c *uaClassifier) fixVersion(ua string) {
	info := &c.info
	switch {
	case info.Browser == "Safari":
		// Safari/605.1.15 is a WebKit build; the version is in Version/.
		info.BrowserVersion = cleanToken(c.version)
	case info.Browser == "Opera" && strings.HasPrefix(ua, "Opera/") && c.version != "":
		info.BrowserVersion = cleanToken(c.version)
	case info.Browser == "Opera" && info.BrowserVersion == "":
		info.BrowserVersion = cleanToken(c.opera)
	case info.Browser == "Internet Explorer":
		// Trident/7.0 is the engine's version, not the browser's.
		info.BrowserVersion = cleanToken(c.msie)
		if info.BrowserVersion == "" {
			info.BrowserVersion = cleanToken(c.rv)
		}
	}
}

// Platform substrings, as bits, in the priority order of Device's table.
const (
	pfWindowsMobile = 1 << iota
	pfChromeOS
	pfAndroid
	pfLinux
	pfIPod
	pfIPhone // the device: "iPhone;", "iPhone14,2", not "iPhone OS"
	pfIPad
	pfIPhoneOS // "CPU iPhone OS": iPhones, iPods and some iPads send it
	pfMacOS
	pfWindows
)

var platformNames = [...]string{
	"Windows Mobile", "ChromeOS", "Android", "Linux", "iPod", "iPhone", "iPad", "iPhone", "macOS", "Windows",
}

// platformOf applies the platform table of Device's doc comment. It finds
// every substring in one pass, then takes the first in table order: about
// three times faster than one strings.Contains per row.
func platformOf(ua string) string {
	found := 0
	for i := 0; i < len(ua); i++ {
		rest := ua[i:]
		switch ua[i] {
		case 'W':
			if strings.HasPrefix(rest, "Windows") {
				found |= pfWindows
				if after := rest[len("Windows"):]; strings.HasPrefix(after, " Phone") || strings.HasPrefix(after, " Mobile") || strings.HasPrefix(after, " CE") {
					found |= pfWindowsMobile
				}
			}
		case 'C':
			if strings.HasPrefix(rest, "CrOS") {
				found |= pfChromeOS
			}
		case 'A':
			// UC Browser writes Android as "Adr": "(MIDP-2.0; U; Adr 4.0.4; ...".
			if strings.HasPrefix(rest, "Android") || strings.HasPrefix(rest, "Adr ") && strings.HasSuffix(ua[:i], "; ") {
				found |= pfAndroid
			}
		case 'L':
			if strings.HasPrefix(rest, "Linux") {
				found |= pfLinux
			}
		case 'i':
			switch {
			case strings.HasPrefix(rest, "iPod"):
				found |= pfIPod
			case strings.HasPrefix(rest, "iPhone OS"):
				found |= pfIPhoneOS
			case strings.HasPrefix(rest, "iPhone"):
				found |= pfIPhone
			case strings.HasPrefix(rest, "iPad"):
				found |= pfIPad
			}
		case 'M':
			if strings.HasPrefix(rest, "Mac OS X") || strings.HasPrefix(rest, "Macintosh") {
				found |= pfMacOS
			}
		}
	}
	for i, name := range platformNames {
		if found&(1<<i) != 0 {
			return name
		}
	}
	return ""
}

// deviceLabels holds "Browser on Platform" for every pair the tables can
// produce.
var deviceLabels = func() map[[2]string]string {
	browsers := []string{
		"Edge", "Opera", "Samsung Internet", "Yandex Browser", "Vivaldi", "UC Browser",
		"Headless Chrome", "Chromium", "Chrome", "Firefox", "Internet Explorer", "Safari",
	}
	platforms := []string{
		"Windows Mobile", "ChromeOS", "Android", "Linux", "iPod", "iPhone", "iPad", "macOS", "Windows",
	}
	m := make(map[[2]string]string, len(browsers)*len(platforms))
	for _, b := range browsers {
		for _, p := range platforms {
			m[[2]string{b, p}] = b + " on " + p
		}
	}
	return m
}()
