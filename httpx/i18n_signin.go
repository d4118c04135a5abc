package httpx

// The messages of suspicious sign-ins (usersessions.SignInCheck) in every
// language: kept apart from the catalogs' files, and added to them before
// anything reads them.

var signInMsgs = map[*catalog]map[string]string{
	catalogEN: {
		"signin.heading": "Unusual sign-in", "signin.new_device": "new device", "signin.new_country": "new country",
		"signin.impossible_travel": "too far from your last session", "signin.from": "Signed in from {place}.",
		"signin.travel": "{km} km from your previous session in {previous}, {duration} earlier.",
		"signin.report": "This wasn't me", "signin.reportName": "This wasn't me: end the sign-in on {device}",
		"dur.minute.one": "{n} minute", "dur.minute.other": "{n} minutes", "dur.hour.one": "{n} hour",
		"dur.hour.other": "{n} hours", "dur.day.one": "{n} day", "dur.day.other": "{n} days",
		"confirm.report.title":   "End a sign-in that wasn't you?",
		"confirm.report.message": "This ends that session at once. Then change your password: whoever signed in may know it.",
		"confirm.report.button":  "End it: this wasn't me", "ended.reported": "Ended: reported as not you",
	},
	catalogDE: {
		"signin.heading": "Ungewöhnliche Anmeldung", "signin.new_device": "neues Gerät", "signin.new_country": "neues Land",
		"signin.impossible_travel": "zu weit von Ihrer letzten Sitzung", "signin.from": "Angemeldet aus {place}.",
		"signin.travel": "{km} km von Ihrer vorherigen Sitzung in {previous}, {duration} früher.",
		"signin.report": "Das war ich nicht", "signin.reportName": "Das war ich nicht: Anmeldung auf {device} beenden",
		"dur.minute.one": "{n} Minute", "dur.minute.other": "{n} Minuten", "dur.hour.one": "{n} Stunde",
		"dur.hour.other": "{n} Stunden", "dur.day.one": "{n} Tag", "dur.day.other": "{n} Tage",
		"confirm.report.title":   "Eine fremde Anmeldung beenden?",
		"confirm.report.message": "Diese Sitzung endet sofort. Ändern Sie danach Ihr Passwort: Wer sich angemeldet hat, kennt es vielleicht.",
		"confirm.report.button":  "Beenden: Das war ich nicht", "ended.reported": "Beendet: als fremd gemeldet",
	},
	catalogES: {
		"signin.heading": "Inicio de sesión inusual", "signin.new_device": "dispositivo nuevo", "signin.new_country": "país nuevo",
		"signin.impossible_travel": "demasiado lejos de tu última sesión", "signin.from": "Sesión iniciada desde {place}.",
		"signin.travel": "A {km} km de tu sesión anterior en {previous}, {duration} antes.",
		"signin.report": "No fui yo", "signin.reportName": "No fui yo: cerrar el inicio de sesión en {device}",
		"dur.minute.one": "{n} minuto", "dur.minute.other": "{n} minutos", "dur.hour.one": "{n} hora",
		"dur.hour.other": "{n} horas", "dur.day.one": "{n} día", "dur.day.other": "{n} días",
		"confirm.report.title":   "¿Cerrar un inicio de sesión que no fue tuyo?",
		"confirm.report.message": "Esa sesión se cierra de inmediato. Después cambia tu contraseña: quien inició sesión puede conocerla.",
		"confirm.report.button":  "Cerrarla: no fui yo", "ended.reported": "Cerrada: denunciada como ajena",
	},
	catalogFR: {
		"signin.heading": "Connexion inhabituelle", "signin.new_device": "nouvel appareil", "signin.new_country": "nouveau pays",
		"signin.impossible_travel": "trop loin de votre dernière session", "signin.from": "Connexion depuis {place}.",
		"signin.travel": "À {km} km de votre session précédente à {previous}, {duration} plus tôt.",
		"signin.report": "Ce n'était pas moi", "signin.reportName": "Ce n'était pas moi : mettre fin à la connexion sur {device}",
		"dur.minute.one": "{n} minute", "dur.minute.other": "{n} minutes", "dur.hour.one": "{n} heure",
		"dur.hour.other": "{n} heures", "dur.day.one": "{n} jour", "dur.day.other": "{n} jours",
		"confirm.report.title":   "Mettre fin à une connexion qui n'était pas vous ?",
		"confirm.report.message": "Cette session prend fin immédiatement. Changez ensuite votre mot de passe : la personne connectée le connaît peut-être.",
		"confirm.report.button":  "Y mettre fin : ce n'était pas moi", "ended.reported": "Terminée : signalée comme étrangère",
	},
	catalogNL: {
		"signin.heading": "Ongebruikelijke aanmelding", "signin.new_device": "nieuw apparaat", "signin.new_country": "nieuw land",
		"signin.impossible_travel": "te ver van je laatste sessie", "signin.from": "Aangemeld vanuit {place}.",
		"signin.travel": "{km} km van je vorige sessie in {previous}, {duration} eerder.",
		"signin.report": "Dit was ik niet", "signin.reportName": "Dit was ik niet: beëindig de aanmelding op {device}",
		"dur.minute.one": "{n} minuut", "dur.minute.other": "{n} minuten", "dur.hour.one": "{n} uur",
		"dur.hour.other": "{n} uur", "dur.day.one": "{n} dag", "dur.day.other": "{n} dagen",
		"confirm.report.title":   "Een aanmelding beëindigen die niet van jou was?",
		"confirm.report.message": "Die sessie stopt meteen. Wijzig daarna je wachtwoord: wie zich aanmeldde, kent het misschien.",
		"confirm.report.button":  "Beëindigen: dit was ik niet", "ended.reported": "Beëindigd: gemeld als niet van jou",
	},
	catalogPTBR: {
		"signin.heading": "Login incomum", "signin.new_device": "dispositivo novo", "signin.new_country": "país novo",
		"signin.impossible_travel": "longe demais da sua última sessão", "signin.from": "Login feito de {place}.",
		"signin.travel": "A {km} km da sua sessão anterior em {previous}, {duration} antes.",
		"signin.report": "Não fui eu", "signin.reportName": "Não fui eu: encerrar o login em {device}",
		"dur.minute.one": "{n} minuto", "dur.minute.other": "{n} minutos", "dur.hour.one": "{n} hora",
		"dur.hour.other": "{n} horas", "dur.day.one": "{n} dia", "dur.day.other": "{n} dias",
		"confirm.report.title":   "Encerrar um login que não foi você?",
		"confirm.report.message": "Essa sessão termina na hora. Depois troque sua senha: quem entrou pode conhecê-la.",
		"confirm.report.button":  "Encerrar: não fui eu", "ended.reported": "Encerrada: denunciada como não sendo você",
	},
	catalogZHCN: {
		"signin.heading": "异常登录", "signin.new_device": "新设备", "signin.new_country": "新国家/地区",
		"signin.impossible_travel": "距您上次会话过远", "signin.from": "从 {place} 登录。",
		"signin.travel": "距您在 {previous} 的上一个会话 {km} 公里，早 {duration}。",
		"signin.report": "这不是我", "signin.reportName": "这不是我：结束 {device} 上的登录",
		"dur.minute.other": "{n} 分钟", "dur.hour.other": "{n} 小时", "dur.day.other": "{n} 天",
		"confirm.report.title":   "结束不是您本人的登录？",
		"confirm.report.message": "该会话将立即结束。之后请修改密码：登录者可能知道您的密码。",
		"confirm.report.button":  "结束：这不是我", "ended.reported": "已结束：报告为非本人",
	},
	catalogJA: {
		"signin.heading": "不審なサインイン", "signin.new_device": "新しいデバイス", "signin.new_country": "新しい国",
		"signin.impossible_travel": "前回のセッションから離れすぎています", "signin.from": "{place} からサインインしました。",
		"signin.travel": "{previous} の前回のセッションから {km} km、{duration} 前。",
		"signin.report": "自分ではありません", "signin.reportName": "自分ではありません: {device} のサインインを終了",
		"dur.minute.other": "{n} 分", "dur.hour.other": "{n} 時間", "dur.day.other": "{n} 日",
		"confirm.report.title":   "身に覚えのないサインインを終了しますか?",
		"confirm.report.message": "そのセッションはすぐに終了します。その後パスワードを変更してください: サインインした人が知っている可能性があります。",
		"confirm.report.button":  "終了する: 自分ではありません", "ended.reported": "終了: 本人ではないと報告",
	},
}

func init() {
	for c, msgs := range signInMsgs {
		for k, v := range msgs {
			c.msgs[k] = v
		}
	}
}
