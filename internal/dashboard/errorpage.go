package dashboard

import (
	"bytes"
	"html/template"
	"net/http"
)

// errorPage is the page for a path no route serves. It stands alone (the
// site's style, no navigation, no logout, no live data): whoever asked may
// not be logged in, and it reads nothing from the store.
var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} · recledger</title>
<link rel="stylesheet" href="{{.CSS}}">
<link rel="icon" href="{{.Icon}}" type="image/svg+xml">
</head>
<body>
<header class="top"><a class="brand" href="/">recledger</a></header>
<main id="main">
<h1>{{.Title}}</h1>
<p class="message">{{.Message}}</p>
<p><a href="/">Go to the overview</a></p>
</main>
</body>
</html>
`))

// ErrorPage answers status (404, 405, ...) with the dashboard's error
// page saying message; the server's front handler calls it for dashboard
// paths that no route serves.
func (d *Dashboard) ErrorPage(w http.ResponseWriter, r *http.Request, status int, message string) {
	var buf bytes.Buffer
	err := errorPage.Execute(&buf, struct{ Title, Message, CSS, Icon string }{
		Title: http.StatusText(status), Message: message, CSS: d.assetURLs["app.css"], Icon: d.assetURLs["icon.svg"],
	})
	if err != nil {
		d.opts.Logger.Error("dashboard error page", "err", err)
		http.Error(w, message, status)
		return
	}
	d.headers(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		w.Write(buf.Bytes())
	})).ServeHTTP(w, r)
}
