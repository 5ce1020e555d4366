// Serve an in-memory PGlite with TimescaleDB on loopback for cityheart's storage tests.
//
//   node serve.mjs [--port N]     prints {"port": N, "timescaledb": "<version>"} once listening
//
// PGlite is one database with one connection: the socket server takes one client at a time
// (others wait until it disconnects). It speaks the simple and extended query protocols but not
// COPY (a COPY crashes the WASM instance) and has no background workers, so TimescaleDB
// policies are created but never run by themselves. SIGINT/SIGTERM stop it; so does the parent
// closing our stdin (the tests' fixture dying).
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const args = process.argv.slice(2)
const at = args.indexOf('--port')
const port = at >= 0 ? Number(args[at + 1]) : 0

const db = await PGlite.create({ extensions: { timescaledb } })
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb')
const { rows } = await db.query(
  "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
)
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' })
await server.start()
const address = server.server?.address?.()
console.log(JSON.stringify({ port: address?.port ?? port, timescaledb: rows[0]?.extversion }))

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  // a client still attached may keep stop() waiting: give it a second, then go anyway
  setTimeout(() => process.exit(0), 1000).unref()
  try {
    await server.stop()
    await db.close()
  } finally {
    process.exit(0)
  }
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
process.stdin.on('end', stop)
process.stdin.on('close', stop)
process.stdin.resume()
