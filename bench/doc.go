// Package bench holds oidcproxy's end-to-end performance benchmarks (the
// "Performance" sections of the authorization-server, gateway and
// operations issues). It has no code of its own: the benchmarks live in the
// external test package bench_test and drive the real App, built by
// oidcproxy.InitializeAppWithStore on a real bbolt file, over real loopback
// HTTP with keep-alive connections.
//
// # Running
//
// The benchmarks never run in a normal test run; go test ./bench runs only
// TestBenchHarnessWorks and TestGatewayBenchHarnessWorks, short smoke tests
// of the harnesses. Run them one at a time, with the iteration counts
// below, and repeat them to see the spread; -v prints the ratios the
// targets are stated in, with a verdict:
//
//	go test -run '^$' -bench 'TokenAuthorizationCode' -benchtime 1x -count 3 -v ./bench
//	go test -run '^$' -bench 'TokenRefresh' -benchtime 1x -count 3 -v ./bench
//	go test -run '^$' -bench 'FullFlow' -benchtime 2000x -count 3 ./bench
//	go test -run '^$' -bench 'Footprint' -benchtime 10000x ./bench
//	go test -run '^$' -bench 'BenchmarkGateway$' -benchtime 1x -count 3 -v ./bench
//	go test -run '^$' -bench 'GatewayPostgres$' -benchtime 1x -count 3 -v ./bench
//	go test -run '^$' -bench 'GatewayPostgresSerial' -count 5 ./bench
//	go test -run '^$' -bench 'GatewayIdleStreams' -benchtime 1x -count 3 -v ./bench
//	go test -run '^$' -bench 'GatewaySerial' -count 5 ./bench
//	go test -run '^$' -bench 'TelemetryCost' -benchtime 1x -count 3 -v ./bench
//	go test -run '^$' -bench 'TokenAuthorizationCodePostgres$' -benchtime 1x -count 3 -v ./bench
//	go test -run '^$' -bench 'TokenAuthorizationCodePostgresReplays' -benchtime 1x -count 3 -v ./bench
//	go test -run '^$' -bench 'TokenRefreshPostgres' -benchtime 1x -count 3 -v ./bench
//	go test -run '^$' -bench 'ClientCredentials' -benchtime 1x -count 3 -v ./bench
//	go test -run '^$' -bench 'RevocationPropagationPostgres' -benchtime 1000x -v ./bench
//
// The PostgreSQL benchmarks need the server of test/pgtest (127.0.0.1:5432)
// with about 70 free connections (max_connections), and pgbench and psql
// for their pgbench sides; they make and drop databases of their own.
//
// Every benchmark that states a ratio measures both sides in one run and
// interleaves them (runSides): each side runs a slice in turn, the order
// rotating every round, so that whatever else loads this small, noisy
// machine (its disk above all, for the fsync sides) hits every side
// alike. The token benchmarks slice by count (tokenSlices slices of
// tokenSliceRequests good requests per side and iteration: -benchtime 1x
// is 8,000 per side), because each request spends a credential seeded
// before the timer; the gateway benchmarks slice by time. The token sides
// of the PostgreSQL benchmarks warm up when built and again just before
// the timer (warmAgain), so that the first slice is not the only cold one. They report
// each side's throughput, p50 and p99, and, where it helps, its process
// CPU µs per request.
//
// CPU profiles: go test's -cpuprofile covers the whole process, seeding
// included. OIDCPROXY_BENCH_CPUPROFILE=dir writes one profile per slice of
// the interleaved benchmarks, named after the benchmark and side, and one
// of the timed part of the others (run without -cpuprofile):
//
//	mkdir -p /tmp/prof && OIDCPROXY_BENCH_CPUPROFILE=/tmp/prof \
//	  go test -run '^$' -bench 'TokenAuthorizationCode' -benchtime 1x ./bench
//	go tool pprof -top -cum /tmp/prof/BenchmarkTokenAuthorizationCode_fsync_*.cpu
//
// OIDCPROXY_BENCH_SLICES=1 logs every slice of the interleaved benchmarks
// (with -v): its side, when it began, its duration and its p50, p99 and
// maximum latency. A run's p99 is often made by one or two slices; this
// shows which, and which side ran just before them.
//
// OIDCPROXY_BENCH_TUNE=1 enables BenchmarkBatchTuning, a grid of the
// store's group-commit cap (boltstore.Options MaxBatchSize) under the
// authorization_code load.
//
// # What is measured
//
// Each side or sub-benchmark starts its own App on a fresh store file in a temp
// directory, in front of an in-process upstream IdP (test/idp's Faulty,
// which the token benchmarks only use for discovery at start-up), with
// logging at error level into io.Discard and telemetry as production runs
// it without OTEL_* variables (spans and metrics recorded, none exported). Before
// the timer starts, the harness writes b.N grants straight into the file
// through ports.Store (a NoSync store, closed before the App reopens the
// file with the options under test): one public client, and per grant one
// authorization code with the S256 challenge of a verifier the harness
// keeps, or, for the refresh benchmark, a live refresh token stored by
// ports.Store.RedeemCode exactly as /token would. Then 50 client
// goroutines share one keep-alive connection pool.
//
//   - BenchmarkTokenAuthorizationCode: authorization_code exchanges, four
//     sides. fsync is production (default boltstore.Options); nosync the
//     same without fsync (never for production); stolen sends, after every
//     third good request of a client, a replay of a redeemed code with an
//     attacker's verifier (a leaked code without PKCE's verifier: the
//     realistic attack, which must neither succeed nor revoke anything);
//     retry replays with the right verifier (a client retrying a lost
//     answer), each of which revokes its grant.
//   - BenchmarkTokenRefresh: refresh_token rotations, fsync and nosync.
//   - BenchmarkTokenAuthorizationCodePostgres: two Apps on one PostgreSQL
//     database (a database of their own, durable: the benchmark fails if
//     synchronous_commit or fsync is off), clients alternating between
//     them; pgbench running bench/pgbench/redeem.sql, the same statements
//     without the App, 50 clients, on a database of its own (its slices
//     are pgbench runs of 5,000 transactions, timed by pgbench without
//     connection set-up; one statement and one commit per transaction,
//     where the Apps send concurrent statements in pipelined batches with
//     one commit, see adapters/pgstore/batch.go); and one App on bbolt
//     (fsync) beside them.
//   - BenchmarkTokenAuthorizationCodePostgresReplays: the two Apps clean,
//     with stolen-code replays and with client-retry replays, each replay
//     sent to the other instance than the exchange it replays.
//   - BenchmarkTokenRefreshPostgres: rotations on the two Apps, pgbench
//     running bench/pgbench/rotate.sql, and bbolt.
//   - BenchmarkGateway: tools/call posts through the App's gateway (real
//     tokens, the cached token and grant checks, telemetry as in
//     production) and through a bare httputil.ReverseProxy with the same
//     transport settings and buffer pool, to one backend.
//   - BenchmarkGatewayPostgres: the same load through an App on
//     PostgreSQL (a database of its own on the test server, grants cached
//     and kept coherent by notifications, as in production), an App on
//     bbolt and the bare proxy, interleaved; with allocations per request.
//     BenchmarkGatewayPostgresSerial: the same three, one request at a
//     time.
//   - BenchmarkGatewayIdleStreams: memory per idle SSE stream through the
//     App's gateway, 1,000 streams, against the same streams direct.
//   - BenchmarkGatewaySerial: one request at a time through either side:
//     the steadiest view of the gateway's own ns and allocations per
//     request.
//   - BenchmarkFullFlow: whole authorizations, register → authorize →
//     consent page → approve → upstream login → callback → token, each with
//     its own browser cookie jar.
//   - BenchmarkFootprint: 100,000 seeded grants, then one registration per
//     iteration (-benchtime 10000x: 10,000 clients, the footprint target); reports
//     the store file size and the process heap, and how much the heap grew
//     across the registrations.
//
// # Reading the results
//
// Besides ns/op (wall time divided by iterations, i.e. 1/throughput across
// all clients), each line reports:
//
//   - <side>-good/s: successful token responses per second (replays
//     excluded); flows/s for the full flow, registrations/s for the
//     footprint;
//   - p50-ms, p99-ms: latency of a successful request (or a whole flow) as
//     its client saw it, queueing included.
//
// The targets: authorization_code fsync ≥ 5,000 good/s, fsync ≥ 0.8
// × nosync in the same run, p99 ≤ 25 ms, and with 25% replays good/s ≥ 0.8
// × the clean run. On PostgreSQL: two instances ≥ 0.5 × pgbench for the
// same statements in the same run, p99 ≤ 50 ms, and with 25% replays
// answered requests per second (replays included) ≥ 0.8 × the clean run
// (BenchmarkTokenAuthorizationCodePostgresReplays says why that reading);
// -v logs each verdict and the bbolt figure beside them. The benchmarks fail (b.Fatalf) on correctness, never on
// speed: any 5xx or transport error, a good request that is not a 200 with
// an access token, a replay that is not 400 invalid_grant, or a credential
// that yielded other than exactly one 200 (double issuance).
//
// The machine running the benchmarks also runs the clients: on two cores
// the client's HTTP work takes CPU from the server, so these numbers are a
// floor for the server alone. Note the load (uptime) next to any numbers;
// fsync timings in particular move with whatever else writes to the disk.
package bench
