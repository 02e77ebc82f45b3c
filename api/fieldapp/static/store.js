// On-device storage (IndexedDB) for the field app: the session, cached reference data, the
// recording in progress and its fixes, and the outbox. A plain script shared by the page and the
// service worker (importScripts): everything hangs off self.MP.
(function (root) {
  "use strict";
  var MP = root.MP = root.MP || {};
  var NAME = "mangrove-patrol", VERSION = 1;
  var opening = null;

  function open() {
    if (opening) return opening;
    opening = new Promise(function (resolve, reject) {
      var request = indexedDB.open(NAME, VERSION);
      request.onupgradeneeded = function () {
        var db = request.result;
        // key → value: "session", "grids:<side>", "categories", "patrols:<user>", "reports:<user>"…
        db.createObjectStore("kv");
        // One row per fix, written as it arrives: [recording id, sequence number].
        db.createObjectStore("fixes", { keyPath: ["rec", "seq"] });
        db.createObjectStore("recordings", { keyPath: "id" });
        var outbox = db.createObjectStore("outbox", { keyPath: "id" });
        outbox.createIndex("created", "created");
      };
      request.onsuccess = function () {
        var db = request.result;
        db.onversionchange = function () { db.close(); opening = null; };
        resolve(db);
      };
      request.onerror = function () { opening = null; reject(request.error); };
      request.onblocked = function () { reject(new Error("IndexedDB is blocked by another tab")); };
    });
    return opening;
  }

  // One transaction; resolves with what `work` returned once the transaction has committed
  // (so a resolved write is on disk, not only queued).
  function tx(stores, mode, work, durability) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(stores, mode, { durability: durability || "strict" });
        var request;  // what `work` returned: an IDBRequest whose result is wanted, or nothing
        t.oncomplete = function () { resolve(request && "result" in request ? request.result : undefined); };
        t.onerror = function () { reject(t.error); };
        t.onabort = function () { reject(t.error || new Error("the write was aborted")); };
        request = work(t);
      });
    }).catch(function (error) { throw friendly(error); });
  }

  // Storage full is the one failure a member can act on: say so in words.
  function friendly(error) {
    if (error && (error.name === "QuotaExceededError" || /quota/i.test(String(error.message)))) {
      var e = new Error("手机存储已满：请先发送或删除发件箱中的项目，或清理手机空间。Device storage is full: send or delete queued items, or free space on the phone.");
      e.name = "QuotaExceededError";
      return e;
    }
    return error;
  }

  function all(request) {
    return new Promise(function (resolve, reject) {
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  MP.store = {
    open: open,
    get: function (key) {
      return tx(["kv"], "readonly", function (t) { return t.objectStore("kv").get(key); });
    },
    put: function (key, value) {
      return tx(["kv"], "readwrite", function (t) { t.objectStore("kv").put(value, key); });
    },
    remove: function (key) {
      return tx(["kv"], "readwrite", function (t) { t.objectStore("kv").delete(key); });
    },
    // --- recordings and their fixes ---
    putRecording: function (rec) {
      return tx(["recordings"], "readwrite", function (t) { t.objectStore("recordings").put(rec); });
    },
    recordings: function () {
      return open().then(function (db) {
        return all(db.transaction("recordings").objectStore("recordings").getAll());
      });
    },
    // A fix is committed as it arrives; "relaxed" (the browser's default) survives a crashed or
    // closed tab, and avoids a disk flush per second on a cheap phone.
    addFix: function (fix) {
      return tx(["fixes"], "readwrite", function (t) { t.objectStore("fixes").put(fix); }, "relaxed");
    },
    fixes: function (rec) {
      return open().then(function (db) {
        var range = IDBKeyRange.bound([rec, 0], [rec, Infinity]);
        return all(db.transaction("fixes").objectStore("fixes").getAll(range));
      });
    },
    dropRecording: function (rec) {
      return tx(["fixes", "recordings"], "readwrite", function (t) {
        t.objectStore("fixes").delete(IDBKeyRange.bound([rec, 0], [rec, Infinity]));
        t.objectStore("recordings").delete(rec);
      });
    },
    // Stop: the recording becomes an outbox item and leaves the recordings in one transaction,
    // so a crash in between can neither lose it nor queue it twice.
    queueRecording: function (rec, item) {
      return tx(["fixes", "recordings", "outbox"], "readwrite", function (t) {
        t.objectStore("outbox").put(item);
        t.objectStore("fixes").delete(IDBKeyRange.bound([rec, 0], [rec, Infinity]));
        t.objectStore("recordings").delete(rec);
      });
    },
    // --- the outbox ---
    putItem: function (item) {
      return tx(["outbox"], "readwrite", function (t) { t.objectStore("outbox").put(item); });
    },
    item: function (id) {
      return tx(["outbox"], "readonly", function (t) { return t.objectStore("outbox").get(id); });
    },
    items: function () {
      return open().then(function (db) {
        return all(db.transaction("outbox").objectStore("outbox").index("created").getAll());
      });
    },
    dropItem: function (id) {
      return tx(["outbox"], "readwrite", function (t) { t.objectStore("outbox").delete(id); });
    },
    friendly: friendly,
  };

  // An id made on the device: it is the item's Idempotency-Key, so it must never repeat.
  MP.newId = function () {
    if (root.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  };
})(self);
