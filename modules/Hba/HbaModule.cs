using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Newtonsoft.Json.Linq;
using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Engine.Templates;

namespace PgState.Modules.Hba;

public enum HbaMode
{
    Authoritative,
    ManagedBlock,
}

/// <summary>spec.hba: pg_hba.conf rules in order, the whole file or a managed block.</summary>
public sealed partial class HbaModule : IModule
{
    public string Name => HbaDiff.Module;

    public int Order => 60;

    public IBoundModule? Bind(HostManifest host, DiagnosticBag diagnostics)
    {
        if (host.Document.Spec["hba"] is not JObject hba)
        {
            return null;
        }
        var rules = new List<HbaRule>();
        var index = 0;
        foreach (var node in (JArray)hba["rules"]!)
        {
            if (BindRule((JObject)node, index++, diagnostics) is { } rule)
            {
                rules.Add(rule);
            }
        }
        var mode = (string?)hba["mode"] == "managed-block" ? HbaMode.ManagedBlock : HbaMode.Authoritative;
        if (hba.Property("position") is { } position && mode == HbaMode.Authoritative)
        {
            diagnostics.Error("PGS204", "spec.hba.position is only used with mode: managed-block", position.PositionOf());
        }
        return new BoundHba(host.Name, rules, mode, (string?)hba["position"] == "bottom", (string?)hba["file"]);
    }

    private static HbaRule? BindRule(JObject r, int index, DiagnosticBag diagnostics)
    {
        var type = (string)r["type"]!;
        var method = (string)r["method"]!;
        var address = (string?)r["address"];
        var path = $"spec.hba.rules[{index}]";
        var ok = true;
        void Error(string message, JToken? at)
        {
            diagnostics.Error("PGS201", $"{path}: {message}", at.PositionOf() ?? r.PositionOf());
            ok = false;
        }
        if (type == "local" && address is not null)
        {
            Error("a local rule takes no address (it is for Unix-socket connections)", r.Property("address"));
        }
        if (type != "local" && address is null)
        {
            Error($"a {type} rule needs an address (CIDR, host name, all, samehost or samenet)", r.Property("type"));
        }
        if (address is not null && type != "local" && CheckAddress(address) is { } problem)
        {
            Error(problem, r["address"]);
        }
        if (method == "peer" && type != "local")
        {
            Error("method peer is only for local rules (use ident for TCP connections)", r["method"]);
        }
        if (method == "cert" && type != "hostssl")
        {
            Error("method cert is only for hostssl rules", r["method"]);
        }
        var databases = Names(r["database"]!, "database", Error);
        var users = Names(r["user"]!, "user", Error);
        var options = (r["options"] as JObject)?.Properties().Select(p => KeyValuePair.Create(p.Name, p.Value.Type == JTokenType.Boolean
            ? ((bool)p.Value ? "1" : "0") : Convert.ToString(((JValue)p.Value).Value, CultureInfo.InvariantCulture) ?? "")) ?? [];
        var comment = (string?)r["comment"];
        if (comment?.Contains('\n', StringComparison.Ordinal) == true)
        {
            Error("comment must be a single line", r["comment"]);
        }
        return ok ? HbaRule.Create(type, databases, users, address, method, options, comment) : null;
    }

    private static List<string> Names(JToken token, string field, Action<string, JToken?> error)
    {
        var names = token is JArray a ? a.Select(t => (string)t!).ToList() : [(string)token!];
        foreach (var name in names.Where(n => n.Any(char.IsControl)))
        {
            error($"{field} '{name}' contains a control character", token);
        }
        return names;
    }

    /// <summary>Why an address is not one pg_hba.conf accepts, or null.</summary>
    internal static string? CheckAddress(string address)
    {
        if (address is "all" or "samehost" or "samenet")
        {
            return null;
        }
        var parts = address.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 2)
        {
            if (!IPAddress.TryParse(parts[0], out _))
            {
                return $"'{parts[0]}' is not an IP address (address mask form)";
            }
            return IPAddress.TryParse(parts[1], out var mask) && HbaRule.PrefixLength(mask) is not null
                ? null
                : $"'{parts[1]}' is not a valid netmask";
        }
        if (address.Contains('/', StringComparison.Ordinal) || IpLike().IsMatch(address))
        {
            return HbaRule.TryParseCidr(address, out _, out _) && address.Contains('/', StringComparison.Ordinal)
                ? null
                : $"'{address}' is not valid CIDR (write 192.168.1.50/32 or 10.0.0.0/8)";
        }
        return HostName().IsMatch(address) ? null : $"'{address}' is not a CIDR, host name, all, samehost or samenet";
    }

    [GeneratedRegex(@"^[0-9.:]+$")]
    private static partial Regex IpLike();

    [GeneratedRegex(@"^\.?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")]
    private static partial Regex HostName();
}

/// <summary>What the server says about the hba file on disk today (pg_hba_file_rules reads it afresh).</summary>
public sealed record ServerHbaView(IReadOnlyList<(int Line, string Error)> Errors, int RuleCount);

internal sealed class BoundHba(string hostName, IReadOnlyList<HbaRule> rules, HbaMode mode, bool bottom, string? file) : IBoundModule
{
    public string Name => HbaDiff.Module;

    public IReadOnlyList<HbaRule> Rules => rules;

    public Task ValidateLiveAsync(IHostSession host, DiagnosticBag diagnostics, CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task<string> PathAsync(IHostSession host, CancellationToken cancellationToken)
    {
        if (file is not null)
        {
            return file;
        }
        await using var cmd = new NpgsqlCommand("select current_setting('hba_file')", host.Connection);
        return (string)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    public static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PgStateException($"cannot read {path}: {e.Message}");
        }
    }

    /// <summary>The whole file as it must be: rendered (authoritative) or the live file with the block replaced.</summary>
    public string Candidate(string liveText, HbaFile? parsedLive = null)
    {
        var model = new Dictionary<string, object?>
        {
            ["host"] = hostName,
            ["rules"] = rules.Select(r => new Dictionary<string, object?> { ["line"] = r.ToLine(), ["comment"] = r.Comment }).ToList(),
        };
        if (mode == HbaMode.Authoritative)
        {
            return TemplateRenderer.Render(typeof(BoundHba).Assembly, "PgState.Modules.Hba.pg_hba.conf.sbn", model);
        }
        var block = TemplateRenderer.Render(typeof(BoundHba).Assembly, "PgState.Modules.Hba.managed_block.sbn", model);
        var parsed = parsedLive ?? HbaFile.Parse(liveText);
        var lines = liveText.Split('\n').ToList();
        var endsWithNewline = liveText.EndsWith('\n');
        if (endsWithNewline)
        {
            lines.RemoveAt(lines.Count - 1);
        }
        var blockLines = block.TrimEnd('\n').Split('\n');
        if (parsed.Block is { } existing)
        {
            lines.RemoveRange(existing.Start - 1, existing.End - existing.Start + 1);
            lines.InsertRange(existing.Start - 1, blockLines);
        }
        else if (bottom)
        {
            lines.AddRange(blockLines);
        }
        else
        {
            lines.InsertRange(0, blockLines);
        }
        return string.Join('\n', lines) + (endsWithNewline || parsed.Block is null ? "\n" : "");
    }

    public static async Task<ServerHbaView> ServerViewAsync(IHostSession host, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand("select line_number, error from pg_hba_file_rules order by line_number", host.Connection);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var errors = new List<(int, string)>();
        var count = 0;
        while (await reader.ReadAsync(cancellationToken))
        {
            if (reader.IsDBNull(1))
            {
                count++;
            }
            else
            {
                errors.Add((reader.IsDBNull(0) ? 0 : reader.GetInt32(0), reader.GetString(1)));
            }
        }
        return new ServerHbaView(errors, count);
    }

    /// <summary>pgstate's own connection, as pg_hba.conf sees it.</summary>
    public static async Task<HbaConnection> OwnConnectionAsync(IHostSession host, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(
            "select host(inet_client_addr()), current_user::text, current_database()::text, " +
            "coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false), " +
            "array(select rolname::text from pg_roles where pg_has_role(current_user, oid, 'member'))", host.Connection);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var address = reader.IsDBNull(0) ? null : IPAddress.Parse(reader.GetString(0));
        return new HbaConnection(address is null ? "local" : "host", reader.GetString(2), reader.GetString(1), address, reader.GetBoolean(3),
            Roles: reader.GetFieldValue<string[]>(4).ToHashSet(StringComparer.Ordinal));
    }

    public async Task<ModuleDiff> PlanAsync(IHostSession host, CancellationToken cancellationToken)
    {
        var path = await PathAsync(host, cancellationToken);
        var text = ReadText(path);
        var live = HbaFile.Parse(text);
        var candidate = Candidate(text, live);
        var managed = mode == HbaMode.Authoritative ? live.Rules : live.Block is { } b ? live.RulesIn(b) : [];
        var write = new HbaWrite(path, candidate, text);
        var (changes, warnings) = HbaDiff.Diff(rules, managed, write, candidate != text);
        var server = await ServerViewAsync(host, cancellationToken);
        foreach (var (line, error) in server.Errors)
        {
            warnings.Add(new PlanWarning($"hba.line[{line}]", Name, $"the server reports an error in the live {Path.GetFileName(path)} today: line {line}: {error}"));
        }
        if (server.Errors.Count == 0 && server.RuleCount != live.Rules.Count)
        {
            warnings.Add(new PlanWarning(null, Name, $"pgstate reads {live.Rules.Count} rules in {path} but the server reads {server.RuleCount} (include files or syntax pgstate does not parse)"));
        }
        if (changes.Count > 0 && await LockoutAsync(host, live, candidate, cancellationToken) is { } lockout)
        {
            warnings.Add(new PlanWarning(null, Name, lockout + (host.Allowances.Contains("lockout") ? " (--allow-lockout given)" : "; apply refuses unless --allow-lockout")));
        }
        return new ModuleDiff(changes, [], warnings, $"{path}:{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))}");
    }

    /// <summary>Why the candidate would lock pgstate's own connection out, or null.</summary>
    private static async Task<string?> LockoutAsync(IHostSession host, HbaFile live, string candidate, CancellationToken cancellationToken)
    {
        var own = await OwnConnectionAsync(host, cancellationToken);
        var next = HbaFile.Parse(candidate).Rules;
        var match = HbaMatcher.FirstMatch([.. next.Select(r => r.Rule)], own);
        if (match is { } m && next[m].Rule.Method != "reject")
        {
            return null;
        }
        var current = HbaMatcher.FirstMatch([.. live.Rules.Select(r => r.Rule)], own);
        var using_ = current is { } c ? $"line {live.Rules[c].Line} ({live.Rules[c].Rule.Describe()})" : "no rule pgstate can identify";
        var after = match is { } r ? $"would be rejected by line {next[r].Line} ({next[r].Rule.Describe()})" : "would match no rule";
        return $"lock-out: pgstate's own connection ({own.Describe()}) uses {using_} today and {after} in the new pg_hba.conf";
    }

    public async Task<string?> ApplyAsync(IHostSession host, ResourceChange change, CancellationToken cancellationToken)
    {
        var write = (HbaWrite)change.Payload!;
        if (write.Written)
        {
            return null;
        }
        var current = ReadText(write.Path);
        if (current == write.Candidate)
        {
            return null; // already on disk
        }
        if (current != write.Expected)
        {
            throw new PgStateException($"{write.Path} changed since the plan was made; run pgstate plan again");
        }
        if (!host.Allowances.Contains("lockout") && await LockoutAsync(host, HbaFile.Parse(current), write.Candidate, cancellationToken) is { } lockout)
        {
            throw new PgStateException($"refused: {lockout}. Pass --allow-lockout to apply anyway.");
        }
        await HostFiles.ReplaceAsync(write.Path, write.Candidate, host.Processes, cancellationToken);
        var server = await ServerViewAsync(host, cancellationToken);
        if (server.Errors.Count > 0)
        {
            await HostFiles.ReplaceAsync(write.Path, current, host.Processes, cancellationToken);
            var lines = write.Candidate.Split('\n');
            var problems = string.Join("; ", server.Errors.Select(e =>
                $"line {e.Line}: {e.Error}" + (e.Line > 0 && e.Line <= lines.Length ? $" in \"{lines[e.Line - 1].Trim()}\"" : "")));
            throw new PgStateException($"the server rejects the new {Path.GetFileName(write.Path)}: {problems}. The previous file was put back unchanged and nothing was reloaded");
        }
        await using (var reload = new NpgsqlCommand("select pg_reload_conf()", host.Connection))
        {
            await reload.ExecuteScalarAsync(cancellationToken);
        }
        var expectedRules = HbaFile.Parse(write.Candidate).Rules.Count;
        if (server.RuleCount != expectedRules)
        {
            throw new PgStateException($"after writing {write.Path} the server reads {server.RuleCount} rules, pgstate wrote {expectedRules}");
        }
        write.Written = true;
        return $"{write.Path} written ({expectedRules} rules), checked by the server and reloaded";
    }
}
