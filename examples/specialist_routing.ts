/**
 * The pattern's "specialist routing" function, written against the real JS SDK.
 *
 * The pattern's documentation writes `new Dakera({ baseUrl, apiKey })`,
 * `client.memory.store({...})`, `client.sessions.end(...)` and
 * `client.memory.recall({..., topK: 5})`. The SDK (`@dakera-ai/dakera`, built from
 * github.com/Dakera-AI/dakera-js) exports `DakeraClient` with `startSession`,
 * `storeMemory`, `endSession` and `recall` (options in snake_case: `top_k`).
 *
 * Run (Node 18+, the SDK built from its repository and linked as `@dakera-ai/dakera`):
 *   DAKERA_URL=http://127.0.0.1:8000 DAKERA_API_KEY=<bot key> npx tsx examples/specialist_routing.ts
 */
import { DakeraClient } from '@dakera-ai/dakera';

export async function routeToSpecialist(
  client: DakeraClient,
  customer: string,
  fromAgent: string,
  toAgent: string,
  summary: string,
): Promise<string[]> {
  // The source agent: the HANDOFF SUMMARY in its own session, then the session ends.
  const session = await client.startSession(customer, { agent: fromAgent });
  await client.storeMemory(customer, {
    content: summary,
    importance: 1.0,
    session_id: session.id,
    metadata: { type: 'handoff', from_agent: fromAgent, to_agent: toAgent },
  });
  await client.endSession(session.id);

  // The specialist: a new session and the five most useful memories, best first.
  await client.startSession(customer, { agent: toAgent });
  const recalled = await client.recall(customer, 'handoff summary', { top_k: 5 });
  return recalled.memories.map((m) => m.content);
}

async function main(): Promise<void> {
  const client = new DakeraClient({
    baseUrl: process.env.DAKERA_URL ?? 'http://127.0.0.1:8000',
    apiKey: process.env.DAKERA_API_KEY ?? '',
  });
  const context = await routeToSpecialist(
    client,
    'user-dave',
    'tier1-bot',
    'billing-specialist',
    'Customer ACC-4521 reports a $100 overcharge on the last invoice. Needs a refund.',
  );
  console.log(JSON.stringify(context, null, 2));
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
