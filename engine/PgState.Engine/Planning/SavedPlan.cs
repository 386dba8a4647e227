using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Engine.Planning;

/// <summary>A manifest a saved plan was made from, with the hash of its bytes.</summary>
internal sealed record SavedManifest(string Path, string Sha256);

/// <summary>How the plan connected (command-line overrides), so apply connects the same way.</summary>
internal sealed record SavedOverrides(string? Host, int? Port, string? User);

/// <summary>A plan file as read back: the plans to show, and what apply needs to check staleness and integrity.</summary>
internal sealed record SavedPlan(int FormatVersion, IReadOnlyList<SavedManifest> Manifests, SavedOverrides Overrides, IReadOnlyList<HostPlan> Plans, bool IntegrityChecked);

/// <summary>
/// The saved-plan file format. Version 2: the JSON rendering plus manifest hashes, per-change
/// fingerprints of the live state, the server each plan was computed against, and a digest over
/// all of it, so an edited file is refused rather than applied. One reader per format version;
/// version 1 files can be shown, not applied. Sensitive values are never stored.
/// </summary>
internal static class SavedPlanFormat
{
    public const int CurrentVersion = 2;
    public const int MaxFileBytes = 64 * 1024 * 1024;

    /// <summary>A change's fingerprint: what it was computed from (address, action, live and desired values).</summary>
    public static string Fingerprint(ResourceChange c) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{c.Address}\n{c.Action}\n{(c.Sensitive ? "(sensitive)" : c.Before)}\n{(c.Sensitive ? "(sensitive)" : c.After)}\n{c.Activation}")));

    public static SavedManifest Hash(string path) =>
        new(Path.GetFullPath(path), "sha256:" + Convert.ToHexStringLower(SHA256.HashData(HostFiles.ReadBounded(path, Manifests.ManifestLoader.MaxFileBytes))));

    /// <summary>The digest over everything apply relies on, from the values (not the bytes), so formatting does not matter.</summary>
    public static string Digest(IReadOnlyList<SavedManifest> manifests, SavedOverrides overrides, IReadOnlyList<HostPlan> plans)
    {
        var sb = new StringBuilder("pgstate-plan-v2\n");
        foreach (var m in manifests)
        {
            sb.Append("manifest\0").Append(m.Path).Append('\0').Append(m.Sha256).Append('\n');
        }
        sb.Append("overrides\0").Append(overrides.Host).Append('\0').Append(overrides.Port).Append('\0').Append(overrides.User).Append('\n');
        foreach (var p in plans)
        {
            sb.Append("plan\0").Append(p.Host).Append('\0').Append(p.Target).Append('\0').Append(p.Fingerprint).Append('\0').Append(p.RestartPolicy).Append('\n');
            if (p.Server is { } s)
            {
                sb.Append("server\0").Append(s.SystemIdentifier).Append('\0').Append(s.DataDirectory).Append('\0').Append(s.Port).Append('\0').Append(s.Version).Append('\n');
            }
            foreach (var c in p.Changes)
            {
                var fingerprint = p.SavedFingerprints?.GetValueOrDefault(c.Address) ?? Fingerprint(c);
                sb.Append("change\0").Append(c.Address).Append('\0').Append(c.Module).Append('\0').Append(c.Action).Append('\0')
                  .Append(c.Sensitive ? "" : c.Before).Append('\0').Append(c.Sensitive ? "" : c.After).Append('\0').Append(c.Activation).Append('\0')
                  .Append(c.Note).Append('\0').Append(c.Sensitive).Append('\0').Append(fingerprint).Append('\n');
            }
            foreach (var x in p.Pending)
            {
                sb.Append("pending\0").Append(x.Address).Append('\0').Append(x.Module).Append('\0').Append(x.Value).Append('\0').Append(x.Needs).Append('\0').Append(x.Note).Append('\n');
            }
            foreach (var w in p.Warnings)
            {
                sb.Append("warning\0").Append(w.Address).Append('\0').Append(w.Module).Append('\0').Append(w.Message).Append('\n');
            }
        }
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    public static SavedPlan Read(string path)
    {
        string text;
        try
        {
            var stat = Posix.Stat(path) ?? throw new PgStateException($"{path}: no such plan file");
            if (stat.Kind != PosixFileKind.Regular)
            {
                throw new PgStateException($"{path}: not a regular file; a saved plan is one");
            }
            if (stat.Size > MaxFileBytes)
            {
                throw new PgStateException($"{path}: {stat.Size / (1024 * 1024)} MB is larger than any plan pgstate writes");
            }
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PgStateException($"{path}: cannot read the plan file: {e.Message}");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new PgStateException($"{path} is not a pgstate plan: not valid JSON ({e.Message})");
        }
        using (document)
        {
            var reader = new JsonPlanReader(path);
            var root = reader.Object(document.RootElement, "");
            var version = reader.Int(root, "formatVersion", "");
            return version switch
            {
                1 => ReadPlans(reader, root, version),
                2 => ReadPlans(reader, root, version),
                _ => throw new PgStateException($"{path}: plan formatVersion {version} is not supported by this pgstate (it reads 1 and 2)"),
            };
        }
    }

    private static SavedPlan ReadPlans(JsonPlanReader r, JsonElement root, int version)
    {
        var manifests = new List<SavedManifest>();
        if (root.TryGetProperty("manifests", out var m))
        {
            var i = 0;
            foreach (var x in r.Array(m, "manifests"))
            {
                var at = $"manifests[{i++}]";
                manifests.Add(new SavedManifest(r.String(x, "path", at), r.String(x, "sha256", at)));
            }
        }
        var overrides = new SavedOverrides(null, null, null);
        if (root.TryGetProperty("connectionOverrides", out var o))
        {
            r.Object(o, "connectionOverrides");
            overrides = new SavedOverrides(r.OptionalString(o, "host", "connectionOverrides"), r.OptionalInt(o, "port", "connectionOverrides"), r.OptionalString(o, "user", "connectionOverrides"));
        }
        var plans = new List<HostPlan>();
        var pi = 0;
        foreach (var h in r.Array(r.Property(root, "plans", ""), "plans"))
        {
            var at = $"plans[{pi++}]";
            var changes = new List<ResourceChange>();
            var fingerprints = new Dictionary<string, string>(StringComparer.Ordinal);
            var ci = 0;
            foreach (var c in r.Array(r.Property(h, "changes", at), at + ".changes"))
            {
                var cat = $"{at}.changes[{ci++}]";
                var change = new ResourceChange(r.String(c, "address", cat), r.Module(c, cat), r.Enum<ChangeAction>(c, "action", cat),
                    r.OptionalString(c, "before", cat), r.OptionalString(c, "after", cat), r.Enum<Activation>(c, "activation", cat),
                    r.OptionalString(c, "note", cat), c.TryGetProperty("sensitive", out var s) && s.ValueKind == JsonValueKind.True);
                changes.Add(change);
                if (r.OptionalString(c, "fingerprint", cat) is { } f)
                {
                    fingerprints[change.Address] = f;
                }
            }
            var pending = new List<PendingActivation>();
            var xi = 0;
            foreach (var p in r.Array(r.Property(h, "pending", at), at + ".pending"))
            {
                var pat = $"{at}.pending[{xi++}]";
                pending.Add(new PendingActivation(r.String(p, "address", pat), r.Module(p, pat), r.OptionalString(p, "value", pat),
                    r.Enum<Activation>(p, "needs", pat), r.String(p, "note", pat)));
            }
            var warnings = new List<PlanWarning>();
            var wi = 0;
            foreach (var w in r.Array(r.Property(h, "warnings", at), at + ".warnings"))
            {
                var wat = $"{at}.warnings[{wi++}]";
                warnings.Add(new PlanWarning(r.OptionalString(w, "address", wat), r.Module(w, wat), r.String(w, "message", wat)));
            }
            PlanTarget? server = null;
            if (h.TryGetProperty("server", out var sv) && sv.ValueKind == JsonValueKind.Object)
            {
                server = new PlanTarget(r.OptionalString(sv, "systemIdentifier", at + ".server"), r.String(sv, "dataDirectory", at + ".server"),
                    r.Int(sv, "port", at + ".server"), r.String(sv, "version", at + ".server"));
            }
            plans.Add(new HostPlan(r.String(h, "host", at), r.String(h, "target", at), changes, pending, warnings, r.String(h, "fingerprint", at),
                r.String(h, "restartPolicy", at) == "allowed" ? RestartPolicy.Allowed : RestartPolicy.Never)
            {
                Server = server,
                SavedFingerprints = fingerprints,
            });
        }
        var integrity = false;
        if (version >= 2)
        {
            var digest = r.String(root, "digest", "");
            if (digest != Digest(manifests, overrides, plans))
            {
                throw new PgStateException($"{r.Path}: the plan file was modified after pgstate wrote it (its digest does not match its content); make a new plan");
            }
            integrity = true;
        }
        return new SavedPlan(version, manifests, overrides, plans, integrity);
    }

    /// <summary>
    /// What changed since the saved plan: every saved change whose fingerprint is different or gone
    /// now, and every change the host needs now that the saved plan does not have. Empty: not stale.
    /// </summary>
    public static IReadOnlyList<string> StaleResources(HostPlan saved, HostPlan now)
    {
        var stale = new List<string>();
        var current = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in now.Changes)
        {
            current[c.Address] = Fingerprint(c);
        }
        var savedAddresses = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in saved.Changes)
        {
            savedAddresses.Add(c.Address);
            var savedFingerprint = saved.SavedFingerprints?.GetValueOrDefault(c.Address) ?? Fingerprint(c);
            if (!current.TryGetValue(c.Address, out var fingerprint))
            {
                stale.Add($"{c.Address} (no longer needs this change)");
            }
            else if (fingerprint != savedFingerprint)
            {
                stale.Add($"{c.Address} (its live state changed)");
            }
        }
        foreach (var c in now.Changes.Where(c => !savedAddresses.Contains(c.Address)))
        {
            stale.Add($"{c.Address} (a new difference the plan does not contain)");
        }
        return stale;
    }

    /// <summary>Why the connected server is not the one the plan was made for, or null.</summary>
    public static string? WrongServer(HostPlan saved, PlanTarget now)
    {
        if (saved.Server is not { } then)
        {
            return "the plan file does not say which server it was made for";
        }
        var same = then.DataDirectory == now.DataDirectory && then.Port == now.Port
            && (then.SystemIdentifier is null || now.SystemIdentifier is null || then.SystemIdentifier == now.SystemIdentifier);
        return same ? null : $"the plan was made for {then.Describe()}, but this connection reaches {now.Describe()}";
    }

    /// <summary>Strict reads of a plan file: a wrong type or a missing field is a clean error naming the field.</summary>
    private sealed class JsonPlanReader(string path)
    {
        public string Path => path;

        private PgStateException Bad(string at, string what) => new($"{path}: {(at.Length == 0 ? "" : at + ": ")}{what}; this is not a plan pgstate wrote");

        public JsonElement Object(JsonElement e, string at) => e.ValueKind == JsonValueKind.Object ? e : throw Bad(at, "expected an object");

        public JsonElement Property(JsonElement o, string name, string at) =>
            Object(o, at).TryGetProperty(name, out var v) ? v : throw Bad(at, $"missing \"{name}\"");

        public IEnumerable<JsonElement> Array(JsonElement e, string at) => e.ValueKind == JsonValueKind.Array ? e.EnumerateArray() : throw Bad(at, "expected a list");

        /// <summary>A module's name: a short lowercase word (it is shown as is, e.g. in a markdown table).</summary>
        public string Module(JsonElement o, string at) =>
            String(o, "module", at) is var m && m.Length is > 0 and <= 32 && m.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')
                ? m : throw Bad(at, "\"module\" is not a module's name");

        public string String(JsonElement o, string name, string at) =>
            Property(o, name, at) is { ValueKind: JsonValueKind.String } v ? v.GetString()! : throw Bad(at, $"\"{name}\" must be a string");

        public string? OptionalString(JsonElement o, string name, string at) =>
            !Object(o, at).TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
            : v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad(at, $"\"{name}\" must be a string or null");

        public int Int(JsonElement o, string name, string at) =>
            Property(o, name, at) is { ValueKind: JsonValueKind.Number } v && v.TryGetInt32(out var i) ? i : throw Bad(at, $"\"{name}\" must be an integer");

        public int? OptionalInt(JsonElement o, string name, string at) =>
            !Object(o, at).TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
            : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) && i is > 0 and < 65536 ? i : throw Bad(at, $"\"{name}\" must be a port number or null");

        public T Enum<T>(JsonElement o, string name, string at)
            where T : struct, Enum
        {
            var text = String(o, name, at);
            return System.Enum.TryParse<T>(text, ignoreCase: true, out var value) && System.Enum.IsDefined(value) && !text.Any(char.IsDigit)
                ? value
                : throw Bad(at, $"\"{name}\" is \"{text}\", not one of {string.Join(", ", System.Enum.GetNames<T>().Select(n => n.ToLowerInvariant()))}");
        }
    }
}
