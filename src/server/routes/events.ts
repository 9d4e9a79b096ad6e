/**
 * `GET /events`: the actors' events as Server-Sent Events (see event-hub.ts). `?types=order,fill`
 * narrows the stream; `Last-Event-ID` (or `?last_event_id=`) resumes it. `GET /feed/switches`: the
 * kept history of feed_switch events per symbol.
 */
import type { FastifyInstance } from 'fastify';
import { fromZod } from '../errors.ts';
import { EVENT_TYPES, type EventHub } from '../event-hub.ts';
import { eventsQuery, feedSwitchesQuery } from '../schemas.ts';

export function registerEventRoutes(app: FastifyInstance, hub: EventHub): void {
  // The feed ladder's history: the page draws the switches made before it was opened.
  app.get('/feed/switches', async (req) => {
    const parsed = feedSwitchesQuery.safeParse(req.query ?? {});
    if (!parsed.success) throw fromZod(parsed.error);
    return { switches: hub.feedSwitches(parsed.data.symbol?.toUpperCase()), per_symbol_limit: hub.switchHistory };
  });
  app.get('/events', async (req, reply) => {
    const parsed = eventsQuery.safeParse(req.query ?? {});
    if (!parsed.success) throw fromZod(parsed.error);
    const q = parsed.data;
    let types: Set<string> | null = null;
    if (q.types !== undefined) {
      types = new Set(
        q.types
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean),
      );
      for (const t of types) {
        if (!(EVENT_TYPES as readonly string[]).includes(t)) {
          return reply.code(400).send({ error: 'bad_request', field: 'types', message: `types: ${JSON.stringify(t)} is not one of ${EVENT_TYPES.join(', ')}` });
        }
      }
    }
    const header = req.headers['last-event-id'];
    const lastEventId = (Array.isArray(header) ? header[0] : header) ?? q.last_event_id;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    const detach = hub.attach(res, { lastEventId, types });
    const done = () => detach();
    req.raw.on('close', done);
    res.on('close', done);
    res.on('error', done);
  });
  // Open streams would hold app.close() until their clients go: end them first.
  app.addHook('preClose', (done) => {
    hub.close();
    done();
  });
}
