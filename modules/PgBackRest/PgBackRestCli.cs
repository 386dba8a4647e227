using System.Globalization;
using System.Text.Json;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;

namespace PgState.Modules.PgBackRest;

/// <summary>One backup as `pgbackrest info --output=json` lists it.</summary>
public sealed record PgBackRestBackup(string Label, string Type, DateTime StartedUtc, DateTime StoppedUtc, long Size, long RepositorySize, string? ArchiveStart, string? ArchiveStop);

/// <summary>A stanza as `pgbackrest info --output=json` describes it.</summary>
public sealed record PgBackRestInfo(string Stanza, int StatusCode, string StatusMessage, IReadOnlyList<PgBackRestBackup> Backups, string? ArchiveMin, string? ArchiveMax)
{
    /// <summary>Codes 1 (missing stanza path) and 3 (missing stanza data): stanza-create is what fixes them.</summary>
    public bool StanzaMissing => StatusCode is 1 or 3;

    public PgBackRestBackup? Newest(string? type = null) =>
        Backups.Where(b => type is null || b.Type == type).OrderBy(b => b.StoppedUtc).LastOrDefault();

    /// <summary>Reads the JSON `pgbackrest info --output=json --stanza=S` prints (an array of stanzas).</summary>
    public static PgBackRestInfo Parse(string json, string stanza)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            foreach (var s in document.RootElement.EnumerateArray())
            {
                if (s.GetProperty("name").GetString() != stanza)
                {
                    continue;
                }
                var status = s.GetProperty("status");
                var backups = new List<PgBackRestBackup>();
                if (s.TryGetProperty("backup", out var list))
                {
                    foreach (var b in list.EnumerateArray())
                    {
                        var ts = b.GetProperty("timestamp");
                        var info = b.GetProperty("info");
                        string? start = null, stop = null;
                        if (b.TryGetProperty("archive", out var archive) && archive.ValueKind == JsonValueKind.Object)
                        {
                            start = archive.TryGetProperty("start", out var a) ? a.GetString() : null;
                            stop = archive.TryGetProperty("stop", out var z) ? z.GetString() : null;
                        }
                        backups.Add(new PgBackRestBackup(b.GetProperty("label").GetString()!, b.GetProperty("type").GetString()!,
                            DateTime.UnixEpoch.AddSeconds(ts.GetProperty("start").GetInt64()), DateTime.UnixEpoch.AddSeconds(ts.GetProperty("stop").GetInt64()),
                            info.GetProperty("size").GetInt64(), info.TryGetProperty("repository", out var r) && r.TryGetProperty("size", out var rs) ? rs.GetInt64() : 0,
                            start, stop));
                    }
                }
                string? min = null, max = null;
                if (s.TryGetProperty("archive", out var archives))
                {
                    foreach (var a in archives.EnumerateArray())
                    {
                        min ??= a.TryGetProperty("min", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
                        max = a.TryGetProperty("max", out var x) && x.ValueKind == JsonValueKind.String ? x.GetString() : max;
                    }
                }
                return new PgBackRestInfo(stanza, status.GetProperty("code").GetInt32(), status.GetProperty("message").GetString() ?? "", backups, min, max);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new PgStateException($"cannot read pgbackrest info's JSON: {e.Message}");
        }
        throw new PgStateException($"pgbackrest info does not list stanza {stanza}");
    }
}

/// <summary>
/// Runs pgbackrest with the configuration pgstate wrote, as the data directory's owner (runuser
/// when root: pgBackRest refuses files it cannot own), argument lists only, always with a timeout.
/// </summary>
public sealed class PgBackRestCli(string configPath, string stanza, string? runAs, ProcessRunner processes)
{
    public string ConfigPath => configPath;

    public string Stanza => stanza;

    public IReadOnlyList<string> Arguments(string command, IReadOnlyList<string> options) =>
        ["--config=" + configPath, "--stanza=" + stanza, .. options, command];

    public Task<ProcessResult> RunAsync(string command, IReadOnlyList<string> options, TimeSpan timeout, CancellationToken cancellationToken, Action<string>? errorLines = null) =>
        runAs is not null && Posix.IsRoot
            ? processes.RunAsync("runuser", ["-u", runAs, "--", "pgbackrest", .. Arguments(command, options)], timeout, check: false, cancellationToken: cancellationToken, errorLines: errorLines)
            : processes.RunAsync("pgbackrest", Arguments(command, options), timeout, check: false, cancellationToken: cancellationToken, errorLines: errorLines);

    public async Task<PgBackRestInfo> InfoAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var result = await RunAsync("info", ["--output=json"], timeout, cancellationToken);
        if (result.ExitCode != 0)
        {
            throw new PgStateException($"pgbackrest info exited with code {result.ExitCode}: {Message(result)}");
        }
        return PgBackRestInfo.Parse(result.StandardOutput, stanza);
    }

    /// <summary>pgBackRest's own words: its ERROR/WARN lines (stderr, else stdout), at most ten.</summary>
    public static string Message(ProcessResult result)
    {
        var text = result.StandardError.Trim().Length > 0 ? result.StandardError : result.StandardOutput;
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        // From the first ERROR (or WARN) line on: pgBackRest continues an error on the lines after it.
        var first = Array.FindIndex(lines, l => l.Contains("ERROR:", StringComparison.Ordinal));
        if (first < 0)
        {
            first = Array.FindIndex(lines, l => l.Contains("WARN:", StringComparison.Ordinal));
        }
        var chosen = lines[Math.Max(first, 0)..];
        return chosen.Length == 0 ? "(no output)" : string.Join(" ", chosen.Take(10)) + (chosen.Length > 10 ? string.Create(CultureInfo.InvariantCulture, $" … ({chosen.Length - 10} more lines)") : "");
    }
}
