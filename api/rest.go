package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// The REST API reads and writes through the same command path as the
// event socket and `ccpbx cli`: lists come from the `json` callcenter_config
// API and the `show` rows, writes run `callcenter_config …` and `uuid_kill`
// lines. So validation and error texts are exactly the commands' own: a
// reply "-ERR Agent not found!" becomes
//
//	404 {"error": "Agent not found!", "reply": "-ERR Agent not found!"}

func writeJSON(rw http.ResponseWriter, status int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.WriteHeader(status)
	enc := json.NewEncoder(rw)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func jsonError(rw http.ResponseWriter, status int, msg string) {
	writeJSON(rw, status, map[string]string{"error": msg})
}

// ccList runs one callcenter_config list through the `json` API and
// writes its response array.
func (w *Web) ccList(rw http.ResponseWriter, r *http.Request, arguments, queue string) {
	data := map[string]string{"arguments": arguments}
	if queue != "" {
		data["queue_name"] = queue
	}
	req, _ := json.Marshal(map[string]any{"command": "callcenter_config", "data": data})
	out := w.o.Core.API(r.Context(), "json "+string(req), nil)
	var resp struct {
		Status   string          `json:"status"`
		Message  string          `json:"message"`
		Response json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Status == "" {
		jsonError(rw, http.StatusServiceUnavailable, "callcenter is not running")
		return
	}
	if resp.Status != "success" {
		jsonError(rw, http.StatusBadRequest, strings.TrimSpace(string(resp.Response)+" "+resp.Message))
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	rw.Write(resp.Response)
	rw.Write([]byte("\n"))
}

func (w *Web) listQueues(rw http.ResponseWriter, r *http.Request) { w.ccList(rw, r, "queue list", "") }
func (w *Web) listAgents(rw http.ResponseWriter, r *http.Request) { w.ccList(rw, r, "agent list", "") }
func (w *Web) listTiers(rw http.ResponseWriter, r *http.Request)  { w.ccList(rw, r, "tier list", "") }
func (w *Web) listMembers(rw http.ResponseWriter, r *http.Request) {
	w.ccList(rw, r, "member list", "")
}
func (w *Web) listQueueMembers(rw http.ResponseWriter, r *http.Request) {
	w.ccList(rw, r, "queue list members", r.PathValue("queue"))
}
func (w *Web) listQueueAgents(rw http.ResponseWriter, r *http.Request) {
	w.ccList(rw, r, "queue list agents", r.PathValue("queue"))
}
func (w *Web) listQueueTiers(rw http.ResponseWriter, r *http.Request) {
	w.ccList(rw, r, "queue list tiers", r.PathValue("queue"))
}

// rowObjects turns listing rows into objects keyed by the listing's
// column names.
func rowObjects(cols []string, rows [][]string) []map[string]string {
	out := make([]map[string]string, 0, len(rows))
	for _, row := range rows {
		o := make(map[string]string, len(cols))
		for i, c := range cols {
			o[c] = row[i]
		}
		out = append(out, o)
	}
	return out
}

func (w *Web) listRegistrations(rw http.ResponseWriter, r *http.Request) {
	var rows [][]string
	if w.o.Registrations != nil {
		rows = registrationRows(w.o.Registrations.Bindings(), w.o.Hostname)
	}
	writeJSON(rw, http.StatusOK, rowObjects(registrationColumns, rows))
}

func (w *Web) listChannels(rw http.ResponseWriter, r *http.Request) {
	writeJSON(rw, http.StatusOK, rowObjects(channelColumns, channelRows(w.o.Core.Channels(), w.o.Hostname)))
}

// errBadArg refuses a value the command line could not carry as one
// argument.
var errBadArg = errors.New("a value must not be empty nor contain quotes, backslashes or line breaks")

// arg quotes a value as one callcenter_config argument ('On Break').
func arg(s string) (string, error) {
	if s == "" || strings.ContainsAny(s, "'\"\\\r\n\x00") {
		return "", errBadArg
	}
	if strings.ContainsAny(s, " \t") {
		return "'" + s + "'", nil
	}
	return s, nil
}

// command runs an API line and answers with its reply: +OK → 200, an
// "-ERR … not found" → 404, any other -ERR → 400.
func (w *Web) command(rw http.ResponseWriter, ctx context.Context, line string) {
	writeReply(rw, w.o.Core.API(ctx, line, nil))
}

// writeReply answers with a command's reply text (see command).
func writeReply(rw http.ResponseWriter, reply string) {
	reply = strings.TrimSpace(reply)
	switch {
	case strings.HasPrefix(reply, "+OK"):
		writeJSON(rw, http.StatusOK, map[string]string{"reply": reply})
	case strings.HasPrefix(reply, "-ERR") || strings.HasPrefix(reply, "-USAGE"):
		msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(reply, "-ERR"), "-USAGE:"))
		status := http.StatusBadRequest
		if strings.Contains(strings.ToLower(msg), "not found") || strings.Contains(msg, "No such") {
			status = http.StatusNotFound
		}
		writeJSON(rw, status, map[string]string{"error": msg, "reply": reply})
	default:
		writeJSON(rw, http.StatusBadRequest, map[string]string{"error": "unexpected reply", "reply": reply})
	}
}

func decodeBody(rw http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		jsonError(rw, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		jsonError(rw, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

func (w *Web) agentStatus(rw http.ResponseWriter, r *http.Request, status string) {
	name, err1 := arg(r.PathValue("agent"))
	st, err2 := arg(status)
	if err := errors.Join(err1, err2); err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	w.command(rw, r.Context(), "callcenter_config agent set status "+name+" "+st)
}

func (w *Web) setAgentStatus(rw http.ResponseWriter, r *http.Request) {
	var body struct {
		Status string `json:"status"`
	}
	if !decodeBody(rw, r, &body) {
		return
	}
	w.agentStatus(rw, r, body.Status)
}

func (w *Web) agentAction(status string) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) { w.agentStatus(rw, r, status) }
}

// number reads a JSON number or numeric string as the command's text, so
// callcenter_config applies its own rules to it.
type number string

func (n *number) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*n = number(s)
		return nil
	}
	var f json.Number
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = number(f.String())
	return nil
}

func (w *Web) addTier(rw http.ResponseWriter, r *http.Request) {
	var body struct {
		Queue    string `json:"queue"`
		Agent    string `json:"agent"`
		Level    number `json:"level"`
		Position number `json:"position"`
	}
	if !decodeBody(rw, r, &body) {
		return
	}
	q, err1 := arg(body.Queue)
	a, err2 := arg(body.Agent)
	if err := errors.Join(err1, err2); err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	line := "callcenter_config tier add " + q + " " + a
	for _, n := range []number{body.Level, body.Position} {
		if n == "" {
			break
		}
		v, err := arg(string(n))
		if err != nil {
			jsonError(rw, http.StatusBadRequest, err.Error())
			return
		}
		line += " " + v
	}
	w.command(rw, r.Context(), line)
}

func (w *Web) delTier(rw http.ResponseWriter, r *http.Request) {
	q, err1 := arg(r.PathValue("queue"))
	a, err2 := arg(r.PathValue("agent"))
	if err := errors.Join(err1, err2); err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	w.command(rw, r.Context(), "callcenter_config tier del "+q+" "+a)
}

func (w *Web) hangupChannel(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("uuid")
	if id == "" || strings.ContainsAny(id, " \t\r\n") {
		jsonError(rw, http.StatusBadRequest, "bad channel uuid")
		return
	}
	line := "uuid_kill " + id
	if c := r.URL.Query().Get("cause"); c != "" {
		if _, err := strconv.Atoi(c); err != nil && strings.ContainsAny(c, " \t\r\n") {
			jsonError(rw, http.StatusBadRequest, "bad cause")
			return
		}
		line += " " + c
	}
	w.command(rw, r.Context(), line)
}

// queueStats is `callcenter_config queue stats <queue> [today|interval]
// json`: the statistics the ACD keeps in 15-minute intervals. Its JSON is
// passed through as the command renders it.
func (w *Web) queueStats(rw http.ResponseWriter, r *http.Request) {
	q, err := arg(r.PathValue("queue"))
	if err != nil {
		jsonError(rw, http.StatusBadRequest, err.Error())
		return
	}
	period := r.URL.Query().Get("period")
	switch period {
	case "":
		period = "today"
	case "today", "interval":
	default:
		jsonError(rw, http.StatusBadRequest, "period must be today or interval")
		return
	}
	reply := w.o.Core.API(r.Context(), "callcenter_config queue stats "+q+" "+period+" json", nil)
	if t := strings.TrimSpace(reply); json.Valid([]byte(t)) && strings.HasPrefix(t, "{") {
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		rw.Write([]byte(t + "\n"))
		return
	}
	writeReply(rw, reply)
}
