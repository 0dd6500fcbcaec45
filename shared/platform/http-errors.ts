import type { FastifyReply } from 'fastify';

/** Error bodies the surface's own code built, whose message is meant for the caller. */
const ownErrors = new WeakSet();

/** The one error shape of every answer: `{ "error": "<what went wrong>" }`. */
export function errorBody(message: string): { error: string } {
  const body = { error: message };
  ownErrors.add(body);
  return body;
}

export function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).send(errorBody(message));
}

/** Whether the surface's own code built this body (its message is then meant for the caller). */
export function isOwnErrorBody(body: object): boolean {
  return ownErrors.has(body);
}
