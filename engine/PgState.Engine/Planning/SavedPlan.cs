using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using PgState.Engine.Diagnostics;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Engine.Planning;

/// <summary>A manifest a saved plan was made from, with the hash of its bytes.</summary>
public sealed record SavedManifest(string Path, string Sha256);

/// <summary>How the plan connected (command-line overrides), so apply connects the same way.</summary>
public sealed record SavedOverrides(string? Host, int? Port, string? User);

/// <summary>A plan file as read back: the plans to show, and what apply needs to check staleness.</summary>
public sealed record SavedPlan(int FormatVersion, IReadOnlyList<SavedManifest> Manifests, SavedOverrides Overrides, IReadOnlyList<HostPlan> Plans);

/// <summary>
/// The saved-plan file format (formatVersion 1): the JSON rendering plus manifest hashes and
/// per-change fingerprints of the live state. One reader per format version.
/// Sensitive values are never stored: apply resolves them again from the environment or files.
/// </summary>
public static class SavedPlanFormat
{
    /// <summary>A change's fingerprint: what it was computed from (address, action, live and desired values).</summary>
    public static string Fingerprint(ResourceChange c) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{c.Address}\n{c.Action}\n{(c.Sensitive ? "(sensitive)" : c.Before)}\n{(c.Sensitive ? "(sensitive)" : c.After)}\n{c.Activation}")));

    public static SavedManifest Hash(string path) =>
        new(Path.GetFullPath(path), "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))));

    public static SavedPlan Read(string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new PgStateException($"{path} is not a readable pgstate plan: {e.Message}");
        }
        using (document)
        {
            var root = document.RootElement;
            var version = root.TryGetProperty("formatVersion", out var v) ? v.GetInt32() : 0;
            return version switch
            {
                1 => ReadVersion1(root),
                _ => throw new PgStateException($"{path}: plan formatVersion {version} is not supported by this pgstate (it reads 1)"),
            };
        }
    }

    private static SavedPlan ReadVersion1(JsonElement root)
    {
        var manifests = root.TryGetProperty("manifests", out var m)
            ? m.EnumerateArray().Select(x => new SavedManifest(x.GetProperty("path").GetString()!, x.GetProperty("sha256").GetString()!)).ToList()
            : [];
        SavedOverrides overrides = new(null, null, null);
        if (root.TryGetProperty("connectionOverrides", out var o))
        {
            overrides = new SavedOverrides(Str(o, "host"), o.TryGetProperty("port", out var p) && p.ValueKind == JsonValueKind.Number ? p.GetInt32() : null, Str(o, "user"));
        }
        var plans = new List<HostPlan>();
        foreach (var h in root.GetProperty("plans").EnumerateArray())
        {
            var changes = h.GetProperty("changes").EnumerateArray().Select(c => new ResourceChange(
                c.GetProperty("address").GetString()!, c.GetProperty("module").GetString()!,
                Enum.Parse<ChangeAction>(c.GetProperty("action").GetString()!, ignoreCase: true),
                Str(c, "before"), Str(c, "after"), Enum.Parse<Activation>(c.GetProperty("activation").GetString()!, ignoreCase: true),
                Str(c, "note"), c.TryGetProperty("sensitive", out var s) && s.GetBoolean())
            { Payload = Str(c, "fingerprint") }).ToList();
            var pending = h.GetProperty("pending").EnumerateArray().Select(p => new PendingActivation(
                p.GetProperty("address").GetString()!, p.GetProperty("module").GetString()!, Str(p, "value"),
                Enum.Parse<Activation>(p.GetProperty("needs").GetString()!, ignoreCase: true), p.GetProperty("note").GetString()!)).ToList();
            var warnings = h.GetProperty("warnings").EnumerateArray().Select(w => new PlanWarning(Str(w, "address"), w.GetProperty("module").GetString()!, w.GetProperty("message").GetString()!)).ToList();
            plans.Add(new HostPlan(h.GetProperty("host").GetString()!, h.GetProperty("target").GetString()!, changes, pending, warnings,
                h.GetProperty("fingerprint").GetString()!, h.GetProperty("restartPolicy").GetString() == "allowed" ? RestartPolicy.Allowed : RestartPolicy.Never));
        }
        return new SavedPlan(1, manifests, overrides, plans);
    }

    private static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>
    /// What changed since the saved plan: every saved change whose fingerprint is different or gone
    /// now, and every change the host needs now that the saved plan does not have. Empty: not stale.
    /// </summary>
    public static IReadOnlyList<string> StaleResources(HostPlan saved, HostPlan now)
    {
        var stale = new List<string>();
        var current = now.Changes.ToDictionary(c => c.Address, Fingerprint, StringComparer.Ordinal);
        foreach (var c in saved.Changes)
        {
            if (!current.TryGetValue(c.Address, out var fingerprint))
            {
                stale.Add($"{c.Address} (no longer needs this change)");
            }
            else if (fingerprint != (string?)c.Payload)
            {
                stale.Add($"{c.Address} (its live state changed)");
            }
        }
        foreach (var c in now.Changes.Where(c => !saved.Changes.Any(s => s.Address == c.Address)))
        {
            stale.Add($"{c.Address} (a new difference the plan does not contain)");
        }
        return stale;
    }
}
