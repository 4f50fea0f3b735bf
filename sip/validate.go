package sip

import (
	"encoding/hex"
	"hash/fnv"
	"strconv"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"
)

// validate holds a request to the rules of RFC 3261 that sipgo's parser
// lets through, as RFC 4475's torture messages exercise them. It returns
// the answer for a request that breaks one (code 0: none broken). What
// sipgo cannot parse never gets here: the input guard (transportlog.go)
// drops it silently.
//
// The checks, in order:
//   - a SIP version other than 2.0: 505;
//   - (before validate, on UDP) an RFC 2543 request gets a branch, see
//     giveRFC2543Branch;
//   - a mandatory header missing (Via, To, From, Call-ID, CSeq), a header
//     that may appear once appearing twice (Call-ID, From, To, CSeq,
//     Max-Forwards, Content-Length, Content-Type), a CSeq method that is
//     not the request's: 400;
//   - a Request-URI with escaped headers (sip:u@h?Route=…): 400; a Contact
//     in addr-spec form with headers (RFC 3261 §20: the URI must then be in
//     <>): 400;
//   - a REGISTER whose To is not a SIP URI: 400 (there is no such
//     address-of-record);
//   - a method nobody defined: 501 (RFC 3261 §21.5.2), before the CSeq
//     check (RFC 4475 mismatch02 allows either); known methods we do not
//     serve get 405 from the routes;
//   - a Request-URI scheme other than sip/sips/tel: 416;
//   - Max-Forwards 0: 483;
//   - a Require tag we do not support: 420 with Unsupported;
//   - an INVITE offering a body that is not SDP: 415 with Accept; an INVITE
//     whose Accept leaves out SDP: 406.
//
// ACK is checked like the rest but never answered (admit drops it).
func validate(req *sipmsg.Request) response {
	if req.SipVersion != "SIP/2.0" {
		return response{code: 505, reason: "Version Not Supported"}
	}
	if len(req.GetHeaders("Via")) == 0 || req.To() == nil || req.From() == nil || req.CallID() == nil || req.CSeq() == nil {
		return response{code: 400, reason: "Missing Mandatory Header"}
	}
	for _, name := range singleHeaders {
		if len(req.GetHeaders(name)) > 1 {
			return response{code: 400, reason: "Multiple " + name + " Headers"}
		}
	}
	if !knownMethod(req.Method) {
		return response{code: 501, reason: "Not Implemented"}
	}
	// sipgo upper-cases the request line's method but not CSeq's.
	if !strings.EqualFold(string(req.CSeq().MethodName), string(req.Method)) {
		return response{code: 400, reason: "CSeq Method Mismatch"}
	}
	if req.Recipient.Headers != nil && req.Recipient.Headers.Length() > 0 {
		return response{code: 400, reason: "Headers In Request-URI"}
	}
	for _, h := range req.GetHeaders("Contact") {
		if v := strings.TrimSpace(h.Value()); !strings.ContainsAny(v, "<\"") && strings.Contains(v, "?") {
			return response{code: 400, reason: "Bad Contact"}
		}
	}
	if req.Method == sipmsg.REGISTER {
		if s := strings.ToLower(req.To().Address.Scheme); s != "sip" && s != "sips" {
			return response{code: 400, reason: "Bad To URI"}
		}
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips", "tel":
	default:
		return response{code: 416, reason: "Unsupported URI Scheme"}
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return response{code: 483, reason: "Too Many Hops"}
	}
	if req.Method != sipmsg.CANCEL {
		if tags := unsupportedRequired(req); len(tags) > 0 {
			return response{code: 420, reason: "Bad Extension",
				headers: []sipmsg.Header{sipmsg.NewHeader("Unsupported", strings.Join(tags, ", "))}}
		}
	}
	if req.Method == sipmsg.INVITE {
		if len(req.Body()) > 0 {
			if ct := req.ContentType(); ct == nil || !isSDP(ct.Value()) {
				return response{code: 415, reason: "Unsupported Media Type",
					headers: []sipmsg.Header{sipmsg.NewHeader("Accept", "application/sdp")}}
			}
		}
		if !acceptsSDP(req.GetHeaders("Accept")) {
			return response{code: 406, reason: "Not Acceptable",
				headers: []sipmsg.Header{sipmsg.NewHeader("Accept", "application/sdp")}}
		}
	}
	return response{}
}

// trimToFromBlanks takes out the blanks RFC 3261 allows around a To or
// From parameter's "=" and before its ";" (RFC 4475 wsinv: "sip:u@h ;
// tag = 1918181833n"), which sipgo keeps in the parameter's name and value
// and in the URI's host: the To tag would not be seen, and a request inside
// a dialog would be taken for a new call. It works on what sipgo parsed (no
// second parse) and only rewrites strings that have such blanks.
func trimToFromBlanks(req *sipmsg.Request) {
	if to := req.To(); to != nil {
		trimParamBlanks(to.Params)
		to.Address.Host = strings.Trim(to.Address.Host, " \t")
	}
	if from := req.From(); from != nil {
		trimParamBlanks(from.Params)
		from.Address.Host = strings.Trim(from.Address.Host, " \t")
	}
}

func trimParamBlanks(ps sipmsg.HeaderParams) {
	for i := range ps {
		ps[i].K = strings.Trim(ps[i].K, " \t")
		ps[i].V = strings.Trim(ps[i].V, " \t")
	}
}

// singleHeaders may appear at most once in a request (RFC 3261 §7.3.1:
// only headers whose grammar is a comma-separated list may repeat).
var singleHeaders = []string{"Call-ID", "From", "To", "CSeq", "Max-Forwards", "Content-Length", "Content-Type"}

// knownMethod: the methods of RFC 3261 and its extensions. Others are
// answered 501; these are either served or answered 405 with Allow.
func knownMethod(m sipmsg.RequestMethod) bool {
	switch m {
	case sipmsg.INVITE, sipmsg.ACK, sipmsg.CANCEL, sipmsg.BYE, sipmsg.REGISTER, sipmsg.OPTIONS,
		sipmsg.SUBSCRIBE, sipmsg.NOTIFY, sipmsg.REFER, sipmsg.INFO, sipmsg.MESSAGE, sipmsg.PRACK,
		sipmsg.UPDATE, sipmsg.PUBLISH:
		return true
	}
	return false
}

func isSDP(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/sdp")
}

// acceptsSDP: no Accept header means SDP (RFC 3261 §20.1), else one of its
// media ranges must cover application/sdp.
func acceptsSDP(hs []sipmsg.Header) bool {
	if len(hs) == 0 {
		return true
	}
	for _, h := range hs {
		for _, r := range strings.Split(h.Value(), ",") {
			mt, _, _ := strings.Cut(r, ";")
			switch strings.ToLower(strings.TrimSpace(mt)) {
			case "application/sdp", "application/*", "*/*", "":
				return true
			}
		}
	}
	return false
}

// giveRFC2543Branch lets requests from RFC 2543 clients through sipgo.
// Their top Via has no RFC 3261 branch ("z9hG4bK…"), and sipgo then keys
// the transaction by the From tag, which RFC 2543 did not require: without
// one sipgo answers 400 by itself (RFC 4475 inv2543). This gives such a
// request a branch made from what RFC 3261 §17.2.3 matches old requests
// on (Request-URI, From tag, Call-ID, CSeq number, top Via sent-by), so
// its retransmissions, its CANCEL and the ACK of a failure land on the
// same transaction. The responses carry that branch in their Via; an RFC
// 2543 client matches responses by Call-ID and CSeq, not by branch. It
// reports whether it changed req.
func giveRFC2543Branch(req *sipmsg.Request) bool {
	via := req.Via()
	if via == nil {
		return false
	}
	if b, _ := via.Params.Get("branch"); strings.HasPrefix(b, sipmsg.RFC3261BranchMagicCookie) {
		return false
	}
	h := fnv.New64a()
	part := func(s string) { h.Write([]byte(s)); h.Write([]byte{0}) }
	part(req.Recipient.String())
	if f := req.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		part(tag)
	}
	if c := req.CallID(); c != nil {
		part(c.Value())
	}
	if c := req.CSeq(); c != nil {
		part(strconv.FormatUint(uint64(c.SeqNo), 10))
	}
	part(via.SentBy())
	via.Params.Remove("branch")
	via.Params.Add("branch", sipmsg.RFC3261BranchMagicCookie+"-2543-"+hex.EncodeToString(h.Sum(nil)))
	return true
}
