package api

import (
	"context"
	"math"
	"strings"
	"time"

	"ccpbx/call"
)

// uuidRecordUsage is mod_commands' syntax line for uuid_record.
const uuidRecordUsage = "-USAGE: <uuid> [start|stop] <path> [<limit>]\n"

// registerRecord adds uuid_record.
func registerRecord(core *call.Core) {
	core.RegisterAPI("uuid_record", "Record session audio", func(_ context.Context, args string, _ *call.Channel) string {
		return uuidRecord(core, args)
	})
}

// uuidRecord is FreeSWITCH's uuid_record: "<uuid> start|stop <path>
// [<limit>]", with its reply strings. A stop path of "all" stops every
// recording of the channel; a limit in seconds stops the recording then.
func uuidRecord(core *call.Core, args string) string {
	argv := call.Separate(strings.TrimSpace(args), ' ', 4)
	if len(argv) < 3 || argv[0] == "" || argv[1] == "" || argv[2] == "" {
		return uuidRecordUsage
	}
	ch, ok := core.Channel(argv[0])
	if !ok {
		return "-ERR Cannot locate session!\n"
	}
	switch strings.ToLower(argv[1]) {
	case "start":
		var limit int
		if len(argv) > 3 {
			// FreeSWITCH keeps the limit in 32 bits; so does the cap here.
			limit = min(call.Atoi(argv[3]), math.MaxUint32)
		}
		if err := ch.StartRecordingFor(argv[2], time.Duration(limit)*time.Second); err != nil {
			return "-ERR Cannot record session!\n"
		}
	case "stop":
		if err := ch.StopRecording(argv[2]); err != nil {
			return "-ERR Cannot stop record session!\n"
		}
	default:
		return uuidRecordUsage
	}
	return "+OK Success\n"
}
