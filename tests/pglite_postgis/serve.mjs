// Serve an in-memory PGlite with PostGIS on loopback for cityheart's spatial storage tests.
//
//   node serve.mjs [--port N]     prints {"port": N, "postgis": "<version>"} once listening
//
// PGlite is one database with one connection: the socket server takes one client at a time
// (others wait until it disconnects). It speaks the simple and extended query protocols but not
// COPY. The extension is offered (pg_available_extensions lists it) but not created here:
// cityheart creates it, as it would on a server that offers it. SIGINT/SIGTERM stop it; so does
// the parent closing our stdin (the tests' fixture dying).
import { PGlite } from '@electric-sql/pglite'
import { postgis } from '@electric-sql/pglite-postgis'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const args = process.argv.slice(2)
const at = args.indexOf('--port')
const port = at >= 0 ? Number(args[at + 1]) : 0

const db = await PGlite.create({ extensions: { postgis } })
const { rows } = await db.query(
  "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'"
)
const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1' })
await server.start()
const address = server.server?.address?.()
console.log(JSON.stringify({ port: address?.port ?? port, postgis: rows[0]?.default_version }))

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
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
