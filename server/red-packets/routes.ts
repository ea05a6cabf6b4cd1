import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { authOf } from '../http/auth.ts';
import { bodyOf, noParams, paramsOf } from '../http/body.ts';
import { listParams } from '../http/pagination.ts';
import { RED_PACKET_CHANNELS, RED_PACKET_STATUSES } from './repo.ts';
import { createRedPacket, createRedPacketSchema, listRedPackets, retrieveRedPacket } from './service.ts';
import { simulateRedPacketRecipient } from '../transfers/simulate.ts';

/** Query of GET /v1/red_packets. */
export const listRedPacketsQuery = z
  .object({
    ...listParams,
    status: z.enum(RED_PACKET_STATUSES).optional(),
    channel: z.enum(RED_PACKET_CHANNELS).optional(),
    out_red_packet_no: z.string().max(64).optional(),
  })
  .strict();

export const simulateRedPacketSchema = z
  .object({ outcome: z.enum(['open', 'expire'], { error: 'must be open or expire' }) })
  .strict();

export function createRedPacketRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/', async (req, res) => {
    res.json(await createRedPacket(deps, authOf(res), paramsOf(createRedPacketSchema, bodyOf(req)), { ip: req.ip }));
  });
  r.get('/', async (req, res) => {
    res.json(await listRedPackets(deps, authOf(res), paramsOf(listRedPacketsQuery, req.query)));
  });
  r.get('/:id', async (req, res) => {
    paramsOf(noParams, req.query);
    res.json(await retrieveRedPacket(deps, authOf(res), req.params.id));
  });
  return r;
}

/** POST /v1/test_helpers/red_packets/:id/simulate: the recipient opens it, or leaves it for 24 h. */
export function createRedPacketTestHelperRoutes(deps: Deps): Router {
  const r = Router();
  r.post('/red_packets/:id/simulate', async (req, res, next) => {
    if (authOf(res).livemode) return next();
    res.json(await simulateRedPacketRecipient(deps, authOf(res), req.params.id, paramsOf(simulateRedPacketSchema, bodyOf(req))));
  });
  return r;
}
