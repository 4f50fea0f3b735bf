// Package cdr owns call detail records: it turns each call leg that is
// fully down (the CHANNEL_HANGUP_COMPLETE event of package call) into one
// record and writes it to the database (store's cdr table, read back by the
// `cdr list` API command) and to a mod_cdr_csv-style Master.csv under
// <data_dir>/cdr-csv/.
//
// Records are durable: the bus hands every complete event to a queue
// without blocking the channel's goroutine and without dropping it (it is
// a call.Bus observer, not a lossy subscriber); one writer goroutine
// empties the queue in batches, one SQLite transaction and one appended,
// fsynced block of CSV lines per batch, and Close drains the queue before
// it returns. A kill -9 loses at most the records still queued.
//
// It must not decide what a leg's times or causes are: package call sets
// those variables, and cdr only copies them.
package cdr
