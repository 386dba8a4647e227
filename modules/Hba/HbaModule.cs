using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Planning;
using PgState.Engine.Resources;
using PgState.Engine.Templates;

namespace PgState.Modules.Hba;

public enum HbaMode
{
    Authoritative,
    ManagedBlock,
}

/// <summary>spec.hba, bound: the rules in order, how much of the file pgstate owns, and where a new block goes.</summary>
/// <param name="RulesOnly">compare: rules — only the rules and their order count; comments and layout that differ are
/// not drift (an imported hand-written file stays as it is until a rule changes, then it is rendered).</param>
public sealed record HbaSection(HbaMode Mode, bool Bottom, string? File, IReadOnlyList<HbaRule> Rules, bool RulesOnly = false);

/// <summary>spec.hba: pg_hba.conf rules in order, the whole file or a managed block.</summary>
public sealed partial class HbaModule : IModule, IRecoveringModule, IVerbProvider
{
    /// <summary>Authentication options PostgreSQL 13–18 know (hba.c parse_hba_auth_opt).</summary>
    public static readonly string[] KnownOptions =
    [
        "map", "clientcert", "clientname", "pamservice", "pam_use_hostname", "ldapurl", "ldaptls", "ldapserver", "ldapport", "ldapscheme",
        "ldapbinddn", "ldapbindpasswd", "ldapsearchattribute", "ldapsearchfilter", "ldapbasedn", "ldapprefix", "ldapsuffix", "krb_realm",
        "include_realm", "compat_realm", "upn_username", "radiusservers", "radiussecrets", "radiusidentifiers", "radiusports", "radiusserver",
        "radiussecret", "radiusidentifier", "radiusport", "issuer", "scope", "validator", "delegate_ident_mapping",
    ];

    public const int MaxRules = 100_000;

    public string Name => HbaDiff.Module;

    public int Order => 60;

    public IBound? Bind(BindContext context)
    {
        if (context.Spec.Mapping("hba") is not { } hba)
        {
            return null;
        }
        var diagnostics = context.Diagnostics;
        var rules = new List<HbaRule>();
        var index = 0;
        var nodes = hba.Sequence("rules")?.Items ?? [];
        if (nodes.Count > MaxRules)
        {
            diagnostics.Error(DiagnosticCodes.BadHbaRule, $"spec.hba.rules: {nodes.Count:N0} rules; pgstate manages at most {MaxRules:N0}", hba.Sequence("rules")!.Position);
        }
        foreach (var node in nodes.OfType<YamlMapping>())
        {
            if (BindRule(node, index++, diagnostics) is { } rule)
            {
                rules.Add(rule);
            }
        }
        var mode = hba.String("mode") == "managed-block" ? HbaMode.ManagedBlock : HbaMode.Authoritative;
        if (hba["position"] is { IsDefault: false } position && mode == HbaMode.Authoritative)
        {
            diagnostics.Error(DiagnosticCodes.HbaPositionWithoutBlock, "spec.hba.position is only used with mode: managed-block", position.KeyOrPosition);
        }
        return new BoundHba(context.Host.Name, new HbaSection(mode, hba.String("position") == "bottom", hba.String("file"), rules, hba.String("compare") == "rules"));
    }

    private static HbaRule? BindRule(YamlMapping r, int index, DiagnosticBag diagnostics)
    {
        var type = r.String("type");
        var method = r.String("method");
        var address = r.String("address");
        var path = $"spec.hba.rules[{index}]";
        var ok = true;
        void Error(DiagnosticCode code, string message, YamlNode? at, bool atKey = false)
        {
            diagnostics.Error(code, $"{path}: {message}", (atKey ? at?.KeyOrPosition : at?.Position) ?? r.Position);
            ok = false;
        }
        if (type is null || method is null)
        {
            return null; // the schema reports it
        }
        if (type == "local" && address is not null)
        {
            Error(DiagnosticCodes.BadHbaRule, "a local rule takes no address (it is for Unix-socket connections)", r["address"], atKey: true);
        }
        if (type != "local" && address is null)
        {
            Error(DiagnosticCodes.BadHbaRule, $"a {type} rule needs an address (CIDR, host name, all, samehost or samenet)", r["type"], atKey: true);
        }
        if (address is not null && type != "local" && CheckAddress(address) is { } problem)
        {
            Error(DiagnosticCodes.BadHbaRule, problem, r["address"]);
        }
        if (method == "peer" && type != "local")
        {
            Error(DiagnosticCodes.BadHbaRule, "method peer is only for local rules (use ident for TCP connections)", r["method"]);
        }
        if (method == "cert" && type != "hostssl")
        {
            Error(DiagnosticCodes.BadHbaRule, "method cert is only for hostssl rules", r["method"]);
        }
        var databases = Names(r, "database", userField: false, path, Error);
        var users = Names(r, "user", userField: true, path, Error);
        var options = new List<KeyValuePair<string, string>>();
        foreach (var option in r.Mapping("options")?.Values ?? [])
        {
            var key = option.Key!;
            if (key.Any(char.IsControl))
            {
                ok = false;
                continue; // reported as a control character
            }
            if (!KnownOptions.Contains(key, StringComparer.Ordinal))
            {
                Error(DiagnosticCodes.HbaUnknownOption, $"option '{TextSafety.Printable(key)}' is not one PostgreSQL knows (known: {string.Join(", ", KnownOptions)})", option, atKey: true);
                continue;
            }
            if (option is not YamlScalar value)
            {
                continue; // the schema reports the type
            }
            var text = value.Kind == ScalarKind.Boolean ? (value.AsBoolean == true ? "1" : "0") : value.Text;
            if (Encoding.UTF8.GetByteCount(HbaRule.OptionToken(key, text)) > HbaName.MaxTokenBytes)
            {
                Error(DiagnosticCodes.HbaTokenUnsafe, $"option {key} is longer than the {HbaName.MaxTokenBytes} bytes PostgreSQL reads in one token", option);
                continue;
            }
            options.Add(KeyValuePair.Create(key, text));
        }
        // Checks PostgreSQL makes when it reads the file: caught here, the server rarely sees a bad candidate.
        bool Has(string key) => options.Any(o => o.Key == key);
        if (Has("map") && method is not ("ident" or "peer" or "gss" or "sspi" or "cert" or "oauth"))
        {
            Error(DiagnosticCodes.BadHbaRule, $"option map is only valid with methods ident, peer, gss, sspi, cert and oauth, not {method}", r.Mapping("options")?["map"], atKey: true);
        }
        if (method == "ldap" && !Has("ldapurl") && !Has("ldapserver"))
        {
            Error(DiagnosticCodes.BadHbaRule, "method ldap needs option ldapserver (or ldapurl)", r["method"]);
        }
        if (method == "ldap" && !Has("ldapurl") && !Has("ldapbasedn") && !Has("ldapprefix") && !Has("ldapsuffix"))
        {
            Error(DiagnosticCodes.BadHbaRule, "method ldap needs ldapbasedn (search+bind) or ldapprefix/ldapsuffix (simple bind), or ldapurl", r["method"]);
        }
        if (method == "radius" && !(Has("radiusservers") || Has("radiusserver")) | !(Has("radiussecrets") || Has("radiussecret")))
        {
            Error(DiagnosticCodes.BadHbaRule, "method radius needs options radiusservers and radiussecrets", r["method"]);
        }
        if (Has("clientcert") && type != "hostssl")
        {
            Error(DiagnosticCodes.BadHbaRule, "option clientcert is only valid on hostssl rules", r.Mapping("options")?["clientcert"], atKey: true);
        }
        var comment = r.String("comment");
        if (comment is not null)
        {
            var trimmed = comment.Trim();
            if (trimmed.StartsWith(HbaFile.BlockBegin[2..], StringComparison.Ordinal) || trimmed.StartsWith(HbaFile.BlockEnd[2..], StringComparison.Ordinal))
            {
                Error(DiagnosticCodes.HbaCommentMarker, "a comment may not start with \"BEGIN pgstate\" or \"END pgstate\": it would be read as the managed block's marker", r["comment"]);
            }
            if (comment.EndsWith('\\'))
            {
                Error(DiagnosticCodes.HbaTokenUnsafe, "a comment may not end with a backslash: PostgreSQL 16 and later join such a line with the next rule", r["comment"]);
            }
        }
        if (address is not null && Encoding.UTF8.GetByteCount(address) > HbaName.MaxTokenBytes)
        {
            Error(DiagnosticCodes.HbaTokenUnsafe, $"the address is longer than {HbaName.MaxTokenBytes} bytes", r["address"]);
        }
        return ok ? HbaRule.Create(type, databases, users, address, method, options, comment) : null;
    }

    private static List<HbaName> Names(YamlMapping r, string field, bool userField, string path, Action<DiagnosticCode, string, YamlNode?, bool> error)
    {
        var names = new List<HbaName>();
        foreach (var value in r.Strings(field))
        {
            var name = HbaName.FromManifest(value.Value, userField);
            if (name.Problem() is { } problem)
            {
                error(DiagnosticCodes.HbaTokenUnsafe, $"{field}: {problem}", r[field], false);
                continue;
            }
            names.Add(name);
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
            if (!IPAddress.TryParse(parts[0], out _) || parts[0].Contains('%', StringComparison.Ordinal))
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

    [GeneratedRegex(@"^[0-9.:]+\z")]
    private static partial Regex IpLike();

    [GeneratedRegex(@"^\.?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\z")]
    private static partial Regex HostName();

    public Task<IReadOnlyList<string>> RecoverAsync(IHostSession session, IBound? bound, CancellationToken cancellationToken)
    {
        var path = (bound as BoundHba)?.Section.File ?? session.Server.HbaFile;
        if (path is null)
        {
            return Task.FromResult((IReadOnlyList<string>)[]);
        }
        // pg_hba.conf first, then every file it includes: a managed block may live in one of them.
        var done = HbaJournal.Recover(path).ToList();
        if (session.Server.Major >= 16)
        {
            try
            {
                foreach (var included in BoundHba.LoadSet(HostFiles.ResolveLinks(path), session.Server.Major).Files.Skip(1))
                {
                    done.AddRange(HbaJournal.Recover(included.Path));
                }
            }
            catch (Exception e) when (e is PgStateException or IOException or UnauthorizedAccessException)
            {
                // the plan reports an unreadable file; recovery does what it can
            }
        }
        return Task.FromResult((IReadOnlyList<string>)done);
    }

    public IReadOnlyList<Verb> Verbs { get; } =
    [
        new Verb(["hba", "test"], "Show which rule of the desired and of the live pg_hba.conf would match a connection, and its method.",
            [
                new VerbParameter("type", "local or host.", VerbParameterKind.Option, Default: "host", Allowed: ["local", "host"]),
                new VerbParameter("database", "Database asked for (replication for a replication connection).", VerbParameterKind.Option, Required: true),
                new VerbParameter("user", "Role name.", VerbParameterKind.Option, Required: true),
                new VerbParameter("address", "Client IP address (host connections).", VerbParameterKind.Option, HelpName: "IP"),
                new VerbParameter("ssl", "The connection uses SSL.", VerbParameterKind.Flag),
            ],
            VerbManifests.Files, HbaTest.RunAsync),
        new Verb(["hba", "recover"], "Finish what an interrupted apply left beside a pg_hba.conf (put the previous file back, remove temporary files); no server needed. Meant for ExecStartPre= of the PostgreSQL service.",
            [new VerbParameter("file", "The pg_hba.conf path (the server's hba_file).", VerbParameterKind.Option, Required: true, HelpName: "PATH")],
            VerbManifests.None, (context, _) =>
            {
                foreach (var note in HbaJournal.Recover(context.String("file")!))
                {
                    context.Error.WriteLine("pgstate: recovered: " + note);
                }
                return Task.FromResult(0);
            }),
    ];
}

/// <summary>What the host has: the file pgstate writes (bytes, parsed; pg_hba.conf or the included file holding the
/// managed block), the whole include tree, what pgstate would write, what the server reads, and pgstate's own connection.</summary>
internal sealed record HbaLive(string Path, HbaFile File, byte[] Candidate, ServerHbaView? Server, HbaConnection? Own, bool Allowed, HbaFileSet Set,
    IReadOnlyList<HbaFileRule> NextRules)
{
    /// <summary>Other clients connected now (pg_stat_activity), grouped; and how many this connection may not see.</summary>
    public IReadOnlyList<LiveSessions> Sessions { get; init; } = [];

    public int HiddenSessions { get; init; }

    /// <summary>Files of the set changed after the server's last configuration load (pg_conf_load_time).</summary>
    public IReadOnlyList<string> NotLoaded { get; init; } = [];
}


/// <summary>What the server says about the hba file on disk today (pg_hba_file_rules reads it afresh).</summary>
public sealed record ServerHbaView(IReadOnlyList<(int Line, string? File, string Error)> Errors, int RuleCount);

internal sealed class BoundHba(string hostName, HbaSection section) : BoundModule<HbaLive, HbaWrite>
{
    public const int MaxFileBytes = 64 * 1024 * 1024;

    private CatalogQuery<(int Line, string? File, string? Error)>? _serverRules;
    private CatalogQuery<HbaConnection>? _own;
    private CatalogQuery<DateTimeOffset>? _loaded;
    private CatalogQuery<(LiveSessions? Sessions, int Hidden)>? _sessions;
    private HbaJournal? _pending;

    public override string Name => HbaDiff.Module;

    public HbaSection Section => section;

    public override void DeclareReads(CatalogReads reads, ServerInfo server)
    {
        _serverRules = server.IsSuperuser
            ? reads.Add(ServerRulesSql(server.Major),
                r => (r.IsDBNull(0) ? 0 : r.GetInt32(0), r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2)))
            : null;
        _own = reads.Add(OwnConnectionSql, ReadOwn);
        _sessions = reads.Add(HbaSessions.Sql, HbaSessions.Read);
        _loaded = reads.Add("select pg_conf_load_time()", r => r.GetFieldValue<DateTimeOffset>(0));
    }

    private const string OwnConnectionSql =
        "select host(inet_client_addr()), current_user::text, current_database()::text, " +
        "coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false), " +
        "array(select rolname::text from pg_roles where pg_has_role(current_user, oid, 'member'))";

    private static HbaConnection ReadOwn(NpgsqlDataReader r)
    {
        var address = r.IsDBNull(0) ? null : IPAddress.Parse(r.GetString(0));
        return new HbaConnection(address is null ? "local" : "host", r.GetString(2), r.GetString(1), address, r.GetBoolean(3),
            Roles: r.GetFieldValue<string[]>(4).ToHashSet(StringComparer.Ordinal));
    }

    /// <summary>pg_hba.conf and, from PostgreSQL 16, the files it includes.</summary>
    public static HbaFileSet LoadSet(string mainPath, int major) =>
        HbaFileSet.Load(mainPath, major, p => p == mainPath || File.Exists(p) ? ReadBytes(p) : null);

    /// <summary>The file the rules go into: pg_hba.conf, or (managed-block mode) the included file that already holds the block.</summary>
    public HbaSource TargetIn(HbaFileSet set) =>
        section.Mode == HbaMode.ManagedBlock && set.BlockSource is { } withBlock ? withBlock : set.Main;

    /// <summary>pg_hba.conf (symlinks followed: the target is what is written).</summary>
    public string PathFor(ServerInfo server)
    {
        var path = HostFiles.ResolveLinks(section.File ?? server.HbaFile
            ?? throw new PgStateException("cannot tell where pg_hba.conf is: the connection may not read hba_file (needs superuser or pg_read_all_settings); set spec.hba.file"));
        // spec.hba.file names the server's file for a connection that cannot read hba_file; it never makes pgstate write another file.
        if (section.File is not null && server.HbaFile is { } served && HostFiles.ResolveLinks(served) != path)
        {
            throw new PgStateException($"spec.hba.file {section.File} is not the server's pg_hba.conf ({served}): pgstate writes only the file the server reads");
        }
        return path;
    }

    public static byte[] ReadBytes(string path)
    {
        try
        {
            var stat = Posix.Stat(path) ?? throw new PgStateException($"{path} does not exist");
            if (stat.Kind != PosixFileKind.Regular || stat.Size > MaxFileBytes)
            {
                throw new PgStateException($"{path} is not a regular file of at most {MaxFileBytes / (1024 * 1024)} MB");
            }
            return HostFiles.ReadBounded(path, MaxFileBytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PgStateException($"cannot read {path}: {e.Message}");
        }
    }

    /// <summary>The whole file as it must be: rendered (authoritative) or the live bytes with the block replaced.</summary>
    public byte[] Candidate(HbaFile live)
    {
        var model = new TemplateModel()
            .Set("host", hostName)
            .Set("rules", section.Rules.Select(r => new TemplateModel().Set("line", r.ToLine()).Set("comment", r.Comment)));
        var assembly = typeof(BoundHba).Assembly;
        if (section.Mode == HbaMode.Authoritative)
        {
            return Encoding.UTF8.GetBytes(TemplateRenderer.Render(assembly, "PgState.Modules.Hba.pg_hba.conf.sbn", model));
        }
        var block = TemplateRenderer.Render(assembly, "PgState.Modules.Hba.managed_block.sbn", model).TrimEnd('\n').Split('\n')
            .Select(l => Encoding.UTF8.GetBytes(l)).ToList();
        var lines = HbaFile.Lines(live.Bytes);
        var endsWithNewline = live.Bytes.Length > 0 && live.Bytes[^1] == (byte)'\n';
        if (live.Block is { } existing)
        {
            lines.RemoveRange(existing.Start - 1, existing.End - existing.Start + 1);
            lines.InsertRange(existing.Start - 1, block);
        }
        else if (section.Bottom)
        {
            lines.AddRange(block);
        }
        else
        {
            lines.InsertRange(0, block);
        }
        using var output = new MemoryStream();
        for (var i = 0; i < lines.Count; i++)
        {
            output.Write(lines[i]);
            if (i < lines.Count - 1 || endsWithNewline || live.Block is null)
            {
                output.WriteByte((byte)'\n');
            }
        }
        return output.ToArray();
    }

    /// <summary>
    /// The rendered file must read back, with PostgreSQL's own tokenizer rules, as exactly the
    /// manifest's rules (and, in managed-block mode, the other rules unchanged): a value that
    /// would smuggle a line or a token in, or a cut-off render, is refused before anything is written.
    /// </summary>
    public HbaFile CheckCandidate(HbaFile live, byte[] candidate, int major)
    {
        var parsed = HbaFile.Parse(candidate, major);
        var ours = section.Mode == HbaMode.Authoritative ? parsed.Rules : parsed.Block is { } b ? parsed.RulesIn(b) : [];
        var same = ours.Count == section.Rules.Count && ours.Select(r => r.Rule.Key).SequenceEqual(section.Rules.Select(r => r.Key));
        if (section.Mode == HbaMode.ManagedBlock)
        {
            var outside = live.Block is { } lb ? live.Rules.Count - live.RulesIn(lb).Count : live.Rules.Count;
            same &= parsed.Rules.Count - ours.Count == outside && parsed.Block is not null;
        }
        if (!same || parsed.Problems.Count > (section.Mode == HbaMode.Authoritative ? 0 : live.Problems.Count))
        {
            throw new PgStateException($"the rendered pg_hba.conf does not read back as the manifest's {section.Rules.Count} rules (it reads {ours.Count}); refusing to write it");
        }
        return parsed;
    }

    protected override Task<HbaLive> ReadLiveAsync(IHostSession session, CancellationToken cancellationToken)
    {
        var major = session.Server.Major;
        var set = LoadSet(PathFor(session.Server), major);
        var target = TargetIn(set);
        var path = target.Path;
        var file = target.File;
        var candidate = Candidate(file);
        var parsedCandidate = CheckCandidate(file, candidate, major);
        ServerHbaView? server = null;
        if (_serverRules is not null)
        {
            var rows = _serverRules.Rows;
            server = new ServerHbaView([.. rows.Where(r => r.Error is not null).Select(r => (r.Line, r.File, r.Error!))], rows.Count(r => r.Error is null));
        }
        // Every rule the server would read after the write, in order (for the lock-out guard and the live sessions).
        var next = set.With(path, parsedCandidate, major).Rules;
        return Task.FromResult(new HbaLive(path, file, candidate, server, _own!.Rows.FirstOrDefault(), session.Allowances.Contains("lockout"), set, next)
        {
            Sessions = [.. _sessions!.Rows.Select(r => r.Sessions).OfType<LiveSessions>()],
            HiddenSessions = _sessions.Rows.Sum(r => r.Hidden),
            // A file written after the server last read its configuration is not what the server enforces.
            NotLoaded = _loaded!.Rows.FirstOrDefault() is { } loaded
                ? [.. set.Files.Select(f => f.Path).Where(p => Posix.Stat(p) is { } st && st.Modified > loaded)]
                : [],
        });
    }

    public override void Diff(HbaLive live, Diff<HbaWrite> diff)
    {
        var set = live.Set;
        var inMain = live.Path == set.Main.Path;
        // Authoritative: every rule the server reads, wherever it lives (pg_hba.conf is written without
        // its include directives, so the rules they bring in go). Managed block: the block's rules.
        var managed = section.Mode == HbaMode.Authoritative
            ? set.Rules
            : live.File.Block is { } b ? [.. live.File.RulesIn(b).Select(r => inMain ? r : r with { File = live.Path })] : [];
        var differs = !live.Candidate.AsSpan().SequenceEqual(live.File.Bytes);
        var impacts = differs ? HbaSessions.Impacts(set.Rules, live.NextRules, live.Sessions, section.Rules) : [];
        var rejected = impacts.Where(i => i.Kind == SessionImpactKind.Rejected).Select(i => i.Message).ToList();
        var write = new HbaWrite(live.Path, live.Candidate, live.File.Bytes) { SessionLockouts = rejected };
        HbaDiff.Diff(section.Rules, managed, write, differs && !section.RulesOnly, diff, inMain ? null : live.Path);
        var name = Path.GetFileName(set.Main.Path);
        if (!differs && live.NotLoaded.Count > 0)
        {
            // Written (by hand, or by an apply interrupted before its reload) but not read: the server still enforces the old rules.
            diff.AddPending("hba", null, Activation.Reload,
                $"{string.Join(", ", live.NotLoaded)} changed after the server last loaded its configuration: the rules on disk are not the ones in force; apply reloads");
        }
        foreach (var (line, file, error) in live.Server?.Errors ?? [])
        {
            var where = file is null || file == set.Main.Path ? "" : $"{file}:";
            diff.Warn($"hba.line[{where}{line}]", $"the server reports an error in the live {(file is null ? name : Path.GetFileName(file))} today: line {line}: {error}");
        }
        foreach (var problem in set.Problems)
        {
            diff.Warn(null, $"{problem}: the server cannot load pg_hba.conf this way");
        }
        if (live.Server is { Errors.Count: 0 } view && view.RuleCount != set.Rules.Count)
        {
            diff.Warn(null, $"pgstate reads {set.Rules.Count} rules in {set.Main.Path}{(set.Files.Count > 1 ? " and the files it includes" : "")} but the server reads {view.RuleCount} (syntax pgstate does not parse)");
        }
        if (section.Mode == HbaMode.Authoritative && set.Main.File.Includes.Count > 0)
        {
            var included = set.Rules.Count(r => r.File is not null);
            var files = set.Files.Skip(1).Select(f => f.Path).ToList();
            diff.Warn(null, $"{name} has {set.Main.File.Includes.Count} include directive(s) (line {string.Join(", ", set.Main.File.Includes.Select(i => i.Line))}); " +
                $"authoritative mode writes the whole file without them, so the server stops reading the {included} rule(s) they bring in" +
                (files.Count > 0 ? $" from {string.Join(", ", files)} (those files stay on disk, unchanged)" : "") +
                " — use mode: managed-block to keep them");
        }
        if (differs && live.Own is { } own && Lockout(set.Rules, live.NextRules, own) is { } lockout)
        {
            diff.Warn(null, lockout + (live.Allowed ? " (--allow-lockout given)" : "; apply refuses unless --allow-lockout"));
        }
        foreach (var impact in impacts)
        {
            diff.Warn(impact.Address, "live sessions: " + impact.Message + (impact.Kind != SessionImpactKind.Rejected ? ""
                : live.Allowed ? " (--allow-lockout given)" : "; apply refuses unless --allow-lockout"));
        }
        if (differs && live.HiddenSessions > 0)
        {
            diff.Warn(null, $"live sessions: {live.HiddenSessions} session(s) of other roles are not visible to this connection (it needs pg_read_all_stats) and were not checked against the new pg_hba.conf");
        }
    }

    public override string Digest(HbaLive live) => $"{live.Path}|{live.Set.Digest()}";

    /// <summary>Why the candidate would lock pgstate's own connection out, or null. Rules in the order the server reads them, across included files.</summary>
    internal static string? Lockout(IReadOnlyList<HbaFileRule> live, IReadOnlyList<HbaFileRule> next, HbaConnection own)
    {
        var match = HbaMatcher.FirstMatch([.. next.Select(r => r.Rule)], own);
        if (match is { } m && next[m].Rule.Method != "reject")
        {
            return null;
        }
        var current = HbaMatcher.FirstMatch([.. live.Select(r => r.Rule)], own);
        var using_ = current is { } c ? $"{HbaFileSet.Where(live[c])} ({live[c].Rule.Describe()})" : "no rule pgstate can identify";
        var after = match is { } r ? $"would be rejected by {HbaFileSet.Where(next[r])} ({next[r].Rule.Describe()})" : "would match no rule";
        return $"lock-out: pgstate's own connection ({own.Describe()}) uses {using_} today and {after} in the new pg_hba.conf";
    }

    protected override async Task<string?> ApplyAsync(IHostSession session, PlannedChange<HbaWrite> change, CancellationToken cancellationToken)
    {
        var write = change.Payload;
        var current = ReadBytes(write.Path);
        if (current.AsSpan().SequenceEqual(write.Candidate))
        {
            return null; // written already, by an earlier hba change of this plan
        }
        if (!current.AsSpan().SequenceEqual(write.Expected))
        {
            throw new PgStateException($"{write.Path} changed since the plan was made; run pgstate plan again");
        }
        if (!session.Allowances.Contains("lockout"))
        {
            await using var cmd = new NpgsqlCommand(OwnConnectionSql, session.Connection);
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            var set = LoadSet(PathFor(session.Server), session.Server.Major);
            if (await reader.ReadAsync(cancellationToken)
                && Lockout(set.Rules, set.With(write.Path, write.Candidate, session.Server.Major).Rules, ReadOwn(reader)) is { } lockout)
            {
                throw new PgStateException($"refused: {lockout}. Pass --allow-lockout to apply anyway.");
            }
            if (write.SessionLockouts.Count > 0)
            {
                throw new PgStateException($"refused: the new pg_hba.conf would no longer admit live sessions: {string.Join("; ", write.SessionLockouts)}. Pass --allow-lockout to apply anyway.");
            }
        }
        _pending = await HbaJournal.WriteAsync(write.Path, write.Candidate);
        var rules = HbaFile.Parse(write.Candidate, session.Server.Major).Rules.Count;
        return $"{write.Path} written ({rules} rules); the server checks it before it is reloaded";
    }

    /// <summary>Asks the server to parse the file now on disk; on any error the previous file goes back, byte for byte, and nothing is reloaded.</summary>
    public override async Task VerifyBeforeActivationAsync(IHostSession session, CancellationToken cancellationToken)
    {
        if (_pending is not { } journal)
        {
            return;
        }
        _pending = null;
        ApplyHooks.Reached("hba verify");
        string? problem;
        try
        {
            var view = await ServerViewAsync(session);
            // What the server should read now: pg_hba.conf and its includes, with the candidate in place.
            var expected = LoadSet(PathFor(session.Server), session.Server.Major);
            problem = view.Errors.Count > 0
                ? "the server rejects the new " + Path.GetFileName(journal.Target) + ": " + string.Join("; ", view.Errors.Select(e =>
                    (e.File is { } f && f != expected.Main.Path ? $"{f} " : "") + $"line {e.Line}: {e.Error}"
                    + (expected.LineText(e.File is { } ef && ef != expected.Main.Path ? ef : null, e.Line) is { } text ? $" in \"{text}\"" : "")))
                : view.RuleCount != expected.Rules.Count
                    ? $"after writing {journal.Target} the server reads {view.RuleCount} rules, pgstate counts {expected.Rules.Count}"
                    : null;
        }
        catch (Exception e) when (e is NpgsqlException or IOException or PgStateException)
        {
            problem = $"the server could not be asked to check the new {Path.GetFileName(journal.Target)} ({e.Message})";
        }
        if (problem is not null)
        {
            journal.RollBack();
            throw new PgStateException($"{problem}. The previous file was put back unchanged and nothing was reloaded");
        }
        journal.Commit();
    }

    private static async Task<ServerHbaView> ServerViewAsync(IHostSession session)
    {
        await using var cmd = new NpgsqlCommand(ServerRulesSql(session.Server.Major), session.Connection);
        await using var reader = await cmd.ExecuteReaderAsync(CancellationToken.None);
        var errors = new List<(int, string?, string)>();
        var count = 0;
        while (await reader.ReadAsync(CancellationToken.None))
        {
            if (reader.IsDBNull(2))
            {
                count++;
            }
            else
            {
                errors.Add((reader.IsDBNull(0) ? 0 : reader.GetInt32(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetString(2)));
            }
        }
        return new ServerHbaView(errors, count);
    }

    /// <summary>pg_hba_file_rules: from 16 it names the file of each line (include directives) and numbers the rules in reading order.</summary>
    private static string ServerRulesSql(int major) => major >= 16
        ? "select line_number, file_name, error from pg_hba_file_rules order by rule_number nulls last, line_number"
        : "select line_number, null::text, error from pg_hba_file_rules order by line_number";
}

/// <summary>
/// The window in which a candidate pg_hba.conf sits at the server's hba_file before the server has
/// accepted it (pg_hba_file_rules only reads that path). Before the rename the old file is kept as
/// a hard link (or an fsynced copy) and a journal says so; the first thing any later run does is
/// put it back if the journal is still there. So pg_hba.conf on disk is, at every instant, a file
/// the server accepted or the one that was there before, whatever instruction a kill lands on.
/// </summary>
internal sealed class HbaJournal
{
    private HbaJournal(string target, byte[] candidate)
    {
        Target = target;
        Candidate = candidate;
    }

    public string Target { get; }

    public byte[] Candidate { get; }

    private static string JournalPath(string target) => Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.pgstate-journal");

    private static string PreviousPath(string target) => Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.pgstate-prev");

    public static async Task<HbaJournal> WriteAsync(string target, byte[] candidate)
    {
        var directory = Path.GetDirectoryName(target)!;
        var previous = PreviousPath(target);
        var journal = JournalPath(target);
        File.Delete(previous);
        if (!Posix.TryLink(target, previous))
        {
            File.Copy(target, previous);
            await using (var s = new FileStream(previous, FileMode.Open, FileAccess.ReadWrite))
            {
                s.Flush(flushToDisk: true);
            }
        }
        Posix.SyncDirectory(directory);
        ApplyHooks.Reached("hba previous kept");
        var text = $"pgstate hba journal 1\npid {Environment.ProcessId}\nstarted {DateTime.UtcNow:O}\n" +
                   $"candidate sha256:{Convert.ToHexStringLower(SHA256.HashData(candidate))}\nstate written\n";
        await HostFiles.WriteAtomicAsync(journal, text, CancellationToken.None);
        ApplyHooks.Reached("hba journal written");
        await HostFiles.ReplaceAsync(target, candidate, CancellationToken.None);
        ApplyHooks.Reached("hba candidate in place");
        return new HbaJournal(target, candidate);
    }

    /// <summary>The server accepted the candidate: drop the journal and the kept previous file.</summary>
    public void Commit()
    {
        File.Delete(JournalPath(Target));
        File.Delete(PreviousPath(Target));
        Posix.SyncDirectory(Path.GetDirectoryName(Target)!);
    }

    /// <summary>Puts the previous file back (an atomic rename of the kept link) and drops the journal.</summary>
    public void RollBack()
    {
        var previous = PreviousPath(Target);
        if (File.Exists(previous))
        {
            File.Move(previous, Target, overwrite: true);
        }
        File.Delete(JournalPath(Target));
        Posix.SyncDirectory(Path.GetDirectoryName(Target)!);
    }

    /// <summary>What a run does first: finish what an interrupted one left beside <paramref name="path"/>.</summary>
    public static IReadOnlyList<string> Recover(string path)
    {
        var done = new List<string>();
        string target;
        try
        {
            target = HostFiles.ResolveLinks(path);
        }
        catch (IOException)
        {
            return done;
        }
        var directory = Path.GetDirectoryName(target)!;
        var journal = JournalPath(target);
        var previous = PreviousPath(target);
        try
        {
            if (File.Exists(journal))
            {
                // The journal sits in a directory the server's user can write: read as data, bounded, never followed.
                var text = HostFiles.ReadBoundedText(journal, 4096, followLinks: false);
                var pid = Regex.Match(text, @"^pid ([0-9]{1,9})$", RegexOptions.Multiline) is { Success: true } m ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
                if (pid != 0 && pid != Environment.ProcessId && Posix.ProcessExists(pid) && File.Exists($"/proc/{pid}/cmdline")
                    && File.ReadAllBytes($"/proc/{pid}/cmdline").AsSpan().IndexOf("pgstate"u8) >= 0)
                {
                    return done; // an apply is running right now: it owns the journal
                }
                if (File.Exists(previous))
                {
                    File.Move(previous, target, overwrite: true);
                    done.Add($"put the previous {Path.GetFileName(target)} back: an apply (pid {pid}) was interrupted after writing a candidate the server had not accepted");
                }
                File.Delete(journal);
                Posix.SyncDirectory(directory);
            }
            else if (File.Exists(previous))
            {
                File.Delete(previous);
                done.Add($"removed {previous}, left by an apply interrupted before it wrote anything");
            }
            foreach (var temp in HostFiles.RemoveStaleTemporaries(directory))
            {
                done.Add($"removed the stale temporary file {temp}");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            done.Add($"could not finish what an interrupted apply left beside {target}: {e.Message}");
        }
        return done;
    }
}
