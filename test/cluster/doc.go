// Package cluster is the cluster test of issue 16 (test/cluster, build tag
// "cluster"): the real ccpbx binary twice (nodes n1 and n2 sharing a
// throwaway PostgreSQL), the real Kamailio in front of them with the
// shipped packaging/kamailio/kamailio.cfg, sipp agents answering through
// Kamailio and Go trunk callers. It runs the article's flow through
// Kamailio against both nodes, then a chaos run that SIGKILLs and restarts
// nodes under load, judged by an oracle that reads only what the phones
// saw (sipp's message traces, the callers' own outcomes) and, after the
// run, the agents' and members' state.
//
//	go test -count=1 -tags cluster -timeout 15m ./test/cluster/
//
// .ci/run runs it after the README's test command. Without postgres,
// kamailio or sipp it skips locally and fails when CI=true. The package has
// no code of its own outside its tests.
package cluster
