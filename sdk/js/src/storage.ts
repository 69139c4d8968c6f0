/**
 * Where a client keeps what must outlive a page: the highest seq it acked (so a reloaded page
 * resumes after it and is not sent again what it already showed) and its generated device id.
 */

/** The part of the Web Storage API the SDK uses; `localStorage` is one. */
export interface CursorStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** Keeps values for the life of the process (Node, or a browser without usable localStorage). */
export class MemoryStorage implements CursorStorage {
  private readonly items = new Map<string, string>();

  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }

  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

/** `localStorage` when the environment has a usable one, else memory. */
export function defaultStorage(): CursorStorage {
  try {
    // Reading the property throws where storage is blocked (some privacy settings).
    const local = (globalThis as { localStorage?: CursorStorage }).localStorage;
    if (local) return local;
  } catch {
    // Fall through to memory.
  }
  return new MemoryStorage();
}

const DEVICE_KEY = "herald:device";

function cursorKey(device: string): string {
  return `herald:last_seq:${device}`;
}

/** The last acked seq kept for `device`, 0 when none (or unreadable). */
export function loadLastSeq(storage: CursorStorage, device: string): number {
  const value = Number(safeGet(storage, cursorKey(device)));
  return Number.isSafeInteger(value) && value > 0 ? value : 0;
}

export function saveLastSeq(storage: CursorStorage, device: string, seq: number): void {
  safeSet(storage, cursorKey(device), String(seq));
}

/** The device id kept in storage, or a new random one that is kept from now on. */
export function storedDeviceId(storage: CursorStorage): string {
  const existing = safeGet(storage, DEVICE_KEY);
  if (existing) return existing;
  const created = randomId();
  safeSet(storage, DEVICE_KEY, created);
  return created;
}

function randomId(): string {
  const crypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (crypto?.randomUUID) return `web-${crypto.randomUUID()}`;
  return `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

// A full or blocked storage must not stop delivery: the server's own cursor still resumes.
export function safeGet(storage: CursorStorage, key: string): string | null {
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

export function safeSet(storage: CursorStorage, key: string, value: string): void {
  try {
    storage.setItem(key, value);
  } catch {
    // See safeGet.
  }
}
