package api

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"ccpbx/call"
	"ccpbx/registrar"
)

// registrationColumns are FreeSWITCH's registrations table columns, the
// header of `show registrations`.
var registrationColumns = []string{"reg_user", "realm", "token", "url", "expires", "network_ip", "network_port", "network_proto", "hostname", "metadata"}

// registrationRows renders bindings as FreeSWITCH does: token is the
// REGISTER's Call-ID, url is "sofia/<profile>/<contact URI>", expires the
// absolute expiry as a Unix epoch, network_* where the REGISTER came from.
func registrationRows(bs []registrar.Binding, hostname string) [][]string {
	rows := make([][]string, 0, len(bs))
	for _, b := range bs {
		ip, port := "", ""
		if b.Source.IsValid() {
			ip = b.Source.Addr().Unmap().String()
			port = strconv.Itoa(int(b.Source.Port()))
		}
		profile := b.Profile
		if profile == "" {
			profile = "internal"
		}
		rows = append(rows, []string{
			b.User,
			b.Realm,
			b.CallID,
			"sofia/" + profile + "/" + contactURI(b.Contact),
			strconv.FormatInt(b.Expires.Unix(), 10),
			ip,
			port,
			strings.ToLower(b.Transport),
			hostname,
			"",
		})
	}
	return rows
}

// contactURI reduces a Contact value to its URI: `"Bob" <sip:1001@h;ob>;
// expires=60` gives "sip:1001@h;ob", a bare URI is returned as it is.
func contactURI(c string) string {
	c = strings.TrimSpace(c)
	if i := strings.IndexByte(c, '<'); i >= 0 {
		rest := c[i+1:]
		if j := strings.IndexByte(rest, '>'); j >= 0 {
			return rest[:j]
		}
		return rest
	}
	return c
}

// channelColumns are FreeSWITCH's channels table columns (`show channels`).
var channelColumns = strings.Split("uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,application,application_data,dialplan,context,read_codec,read_rate,read_bit_rate,write_codec,write_rate,write_bit_rate,secure,hostname,presence_id,presence_data,accountcode,callstate,callee_name,callee_num,callee_direction,call_uuid,sent_callee_name,sent_callee_num,initial_cid_name,initial_cid_num,initial_ip_addr,initial_dest,initial_dialplan,initial_context", ",")

// callColumns are the columns of FreeSWITCH's basic_calls view (`show
// calls`): the A leg, then its bridged B leg with a "b_" prefix.
var callColumns = strings.Split("uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,presence_id,presence_data,accountcode,callstate,callee_name,callee_num,callee_direction,call_uuid,hostname,sent_callee_name,sent_callee_num,b_uuid,b_direction,b_created,b_created_epoch,b_name,b_state,b_cid_name,b_cid_num,b_ip_addr,b_dest,b_presence_id,b_presence_data,b_accountcode,b_callstate,b_callee_name,b_callee_num,b_callee_direction,b_sent_callee_name,b_sent_callee_num,call_created_epoch", ",")

// chanInfo is one channel's snapshot with FreeSWITCH's column names.
type chanInfo map[string]string

// channelState approximates FreeSWITCH's CS_* state from what the core
// knows: inbound legs run their dialplan, outbound legs wait to be bridged,
// bridged legs exchange media.
func channelState(ch *call.Channel, bridged bool) string {
	switch {
	case !ch.Ready():
		return "CS_HANGUP"
	case bridged:
		return "CS_EXCHANGE_MEDIA"
	case ch.Direction() == call.Outbound:
		return "CS_CONSUME_MEDIA"
	default:
		return "CS_EXECUTE"
	}
}

// bridgePartners maps each channel to the one it is bridged with. Only
// mutual bridge_uuid variables count: call.Bridge clears the A leg's when
// the bridge ends, and a stale one on the B leg must not pair it.
func bridgePartners(chs []*call.Channel) map[string]string {
	peer := make(map[string]string, len(chs))
	for _, ch := range chs {
		if p := ch.Var("bridge_uuid"); p != "" {
			peer[ch.UUID()] = p
		}
	}
	out := make(map[string]string, len(peer))
	for a, b := range peer {
		if peer[b] == a {
			out[a] = b
		}
	}
	return out
}

func snapshot(ch *call.Channel, hostname string, bridged bool) chanInfo {
	v := ch.Vars()
	codec, rate, bits := "", "", ""
	if m := ch.Media(); m != nil {
		codec = m.Codec()
		if codec != "" {
			rate, bits = "8000", "64000"
		}
	}
	callUUID := v["call_uuid"]
	if callUUID == "" {
		callUUID = ch.UUID()
	}
	return chanInfo{
		"uuid":             ch.UUID(),
		"direction":        string(ch.Direction()),
		"created":          ch.Created().Local().Format("2006-01-02 15:04:05"),
		"created_epoch":    strconv.FormatInt(ch.Created().Unix(), 10),
		"name":             ch.Name(),
		"state":            channelState(ch, bridged),
		"cid_name":         v["caller_id_name"],
		"cid_num":          v["caller_id_number"],
		"ip_addr":          v["network_addr"],
		"dest":             v["destination_number"],
		"application":      v["current_application"],
		"application_data": v["current_application_data"],
		"dialplan":         "XML",
		"context":          v["context"],
		"read_codec":       codec,
		"read_rate":        rate,
		"read_bit_rate":    bits,
		"write_codec":      codec,
		"write_rate":       rate,
		"write_bit_rate":   bits,
		"secure":           "",
		"hostname":         hostname,
		"presence_id":      v["presence_id"],
		"presence_data":    v["presence_data"],
		"accountcode":      v["accountcode"],
		"callstate":        ch.State(),
		"callee_name":      v["callee_id_name"],
		"callee_num":       v["callee_id_number"],
		"callee_direction": "",
		"call_uuid":        callUUID,
		"sent_callee_name": "",
		"sent_callee_num":  "",
		"initial_cid_name": v["caller_id_name"],
		"initial_cid_num":  v["caller_id_number"],
		"initial_ip_addr":  v["network_addr"],
		"initial_dest":     v["destination_number"],
		"initial_dialplan": "XML",
		"initial_context":  v["context"],
	}
}

func (ci chanInfo) row(cols []string, prefix string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = ci[strings.TrimPrefix(c, prefix)]
	}
	return out
}

// channelRows lists live channels, oldest first.
func channelRows(chs []*call.Channel, hostname string) [][]string {
	partners := bridgePartners(chs)
	rows := make([][]string, 0, len(chs))
	for _, ch := range chs {
		_, bridged := partners[ch.UUID()]
		rows = append(rows, snapshot(ch, hostname, bridged).row(channelColumns, ""))
	}
	return rows
}

// callRows pairs bridged legs into one row (the older leg is the A side),
// and lists every unbridged channel on a row of its own.
func callRows(chs []*call.Channel, hostname string) [][]string {
	partners := bridgePartners(chs)
	infos := make([]chanInfo, len(chs))
	byUUID := make(map[string]int, len(chs))
	for i, ch := range chs {
		_, bridged := partners[ch.UUID()]
		infos[i] = snapshot(ch, hostname, bridged)
		byUUID[ch.UUID()] = i
	}
	var aCols, bCols []string
	for _, c := range callColumns {
		switch {
		case c == "call_created_epoch":
		case strings.HasPrefix(c, "b_"):
			bCols = append(bCols, c)
		default:
			aCols = append(aCols, c)
		}
	}
	rows := make([][]string, 0, len(chs))
	for i, a := range infos {
		var b chanInfo
		if j, ok := byUUID[partners[a["uuid"]]]; ok && j != i {
			if j < i {
				continue // a is the B leg of an older channel's call
			}
			b = infos[j]
		}
		row := a.row(aCols, "")
		if b != nil {
			row = append(row, b.row(bCols, "b_")...)
			// The call exists since its B leg was created.
			row = append(row, b["created_epoch"])
		} else {
			row = append(row, make([]string, len(bCols)+1)...)
		}
		rows = append(rows, row)
	}
	return rows
}

// callCount is len(callRows(chs, …)) without building the rows: every
// channel is a row except the younger leg of a bridged pair.
func callCount(chs []*call.Channel) int {
	partners := bridgePartners(chs)
	index := make(map[string]int, len(partners))
	for i, ch := range chs {
		if _, ok := partners[ch.UUID()]; ok {
			index[ch.UUID()] = i
		}
	}
	n := len(chs)
	for i, ch := range chs {
		if j, ok := index[partners[ch.UUID()]]; ok && j < i {
			n--
		}
	}
	return n
}

// sofiaRule is the line under the header and above the totals of `sofia
// status`.
var sofiaRule = strings.Repeat("=", 97)

// sofiaStatus renders `sofia status` exactly as mod_sofia: right-aligned
// name (25) and data (40) columns separated by tabs, rules of '=', then
// "N profiles M aliases".
func sofiaStatus(infos []ProfileInfo) string {
	infos = append([]ProfileInfo(nil), infos...)
	sort.SliceStable(infos, func(i, j int) bool {
		ki, ri := sofiaGroup(infos[i])
		kj, rj := sofiaGroup(infos[j])
		if ki != kj {
			return ki < kj
		}
		if ri != rj {
			return ri < rj
		}
		return infos[i].Name < infos[j].Name
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%25s\t%s\t  %40s\t%s\n", "Name", "   Type", "Data", "State")
	b.WriteString(sofiaRule + "\n")
	profiles, aliases := 0, 0
	for _, p := range infos {
		switch p.Type {
		case "profile":
			profiles++
		case "alias":
			aliases++
		}
		fmt.Fprintf(&b, "%25s\t%7s\t  %40s\t%s\n", p.Name, p.Type, p.Data, p.State)
	}
	b.WriteString(sofiaRule + "\n")
	ps, as := "s", "es"
	if profiles == 1 {
		ps = ""
	}
	if aliases == 1 {
		as = ""
	}
	fmt.Fprintf(&b, "%d profile%s %d alias%s\n", profiles, ps, aliases, as)
	return b.String()
}

// sofiaGroup orders `sofia status` rows by profile, each profile preceded by
// its aliases and followed by its gateways ("blueivr::GW"), which is how
// the reference article's listing reads. (FreeSWITCH itself walks a hash
// table, so its order is arbitrary.)
func sofiaGroup(p ProfileInfo) (key string, rank int) {
	switch p.Type {
	case "alias":
		return p.Data, 0
	case "gateway":
		prof, _, _ := strings.Cut(p.Name, "::")
		return prof, 2
	default:
		return p.Name, 1
	}
}

const sofiaUsage = "-USAGE: sofia status\n"

func (c *commands) sofia(_ context.Context, args string, _ *call.Channel) string {
	f := strings.Fields(args)
	if len(f) != 1 || !strings.EqualFold(f[0], "status") {
		return sofiaUsage
	}
	var infos []ProfileInfo
	if c.d.Profiles != nil {
		infos = c.d.Profiles.ProfileInfos()
	}
	return sofiaStatus(infos)
}

// sofiaContact is mod_sofia's sofia_contact: the dial strings of a user's
// registered contacts, "sofia/<profile>/<contact URI>" joined by commas,
// or "error/user_not_registered". The argument is [profile/]user[@domain];
// a domain must equal the binding's realm (or name its profile).
func (c *commands) sofiaContact(_ context.Context, args string, _ *call.Channel) string {
	spec := strings.TrimSpace(args)
	if spec == "" {
		return ""
	}
	profile := ""
	if p, rest, ok := strings.Cut(spec, "/"); ok {
		profile, spec = p, rest
		if profile == "*" {
			profile = ""
		}
	}
	user, domain, _ := strings.Cut(spec, "@")
	var out []string
	for _, b := range c.bindings() {
		if b.User != user {
			continue
		}
		prof := b.Profile
		if prof == "" {
			prof = "internal"
		}
		if profile != "" && !strings.EqualFold(profile, prof) {
			continue
		}
		if domain != "" && !strings.EqualFold(domain, b.Realm) && !strings.EqualFold(domain, prof) {
			continue
		}
		out = append(out, "sofia/"+prof+"/"+contactURI(b.Contact))
	}
	if len(out) == 0 {
		return "error/user_not_registered"
	}
	return strings.Join(out, ",")
}
