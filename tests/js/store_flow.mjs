// The official JS SDK's StoreClient against Chorus: put, get, search (filter and query), list namespaces,
// delete. Prints one JSON line of what it saw; tests/store/test_store_js_sdk.py checks it.
import { Client } from "@langchain/langgraph-sdk";

const client = new Client({ apiUrl: process.env.CHORUS_URL, apiKey: process.env.CHORUS_KEY });
const seen = {};

await client.store.putItem(["js", "u1"], "refund", { text: "Refunds reach your card within 5 days." });
await client.store.putItem(["js", "u1"], "hours", { text: "We are open 9 to 5 on weekdays." }, { ttl: 60 });
await client.store.putItem(["js", "u2"], "plain", { kind: "note" }, { index: false });

const item = await client.store.getItem(["js", "u1"], "refund");
seen.item = { namespace: item.namespace, key: item.key, value: item.value, createdAt: Boolean(item.createdAt) };
const byQuery = await client.store.searchItems(["js"], { query: "when do I get my money back?", limit: 2 });
seen.ranked = byQuery.items.map((i) => i.key);
seen.scored = byQuery.items.every((i) => typeof i.score === "number");
seen.filtered = (await client.store.searchItems(["js"], { filter: { kind: "note" } })).items.map((i) => i.key);
seen.namespaces = (await client.store.listNamespaces({ prefix: ["js"] })).namespaces;
await client.store.deleteItem(["js", "u1"], "refund");
try {
  await client.store.getItem(["js", "u1"], "refund");
  seen.afterDelete = "found";
} catch (err) {
  seen.afterDelete = err.status ?? String(err);
}
console.log(JSON.stringify(seen));
