using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;
using PgState.Engine.Templates;

namespace PgState.Modules.Hba;

/// <summary>
/// pgstate import for spec.hba: the rules of pg_hba.conf in order, each with the comment lines just
/// above it (and a comment at the end of its line), names written so that they read back exactly as
/// PostgreSQL reads them ("all" quoted is a role named all). The whole file (authoritative) or the
/// managed block when the file has one; --hba-block FROM:TO marks one. When the live file is not
/// byte for byte what pgstate would render, the section says compare: rules, so comments and
/// spacing are not drift.
/// </summary>
public sealed partial class HbaModule : IImportingModule
{
    public IReadOnlyList<string> ImportSections => ["hba"];

    public int ImportOrder => 40;

    public IReadOnlyList<VerbParameter> ImportParameters =>
    [
        new VerbParameter("hba-block",
            "Manage only lines FROM to TO of pg_hba.conf (mode managed-block): import writes the two marker comments around them before reading — " +
            "the one change import ever makes (the server reads the same rules; nothing is reloaded).",
            VerbParameterKind.Option, HelpName: "FROM:TO"),
    ];

    public IReadOnlyList<string> HostNameHints(IHostSession session)
    {
        if (session.Server.HbaFile is not { } hbaFile)
        {
            return [];
        }
        try
        {
            var lines = HbaFile.Lines(BoundHba.ReadBytes(HostFiles.ResolveLinks(hbaFile))).Select(HbaFile.Decode).ToList();
            return [.. lines.Select(l => (HeaderHost().Match(l) is { Success: true } h ? h : BlockHost().Match(l)))
                .Where(m => m.Success).Select(m => m.Groups[1].Value).Distinct().Take(1)];
        }
        catch (PgStateException)
        {
            return [];
        }
    }

    public async Task<IReadOnlyList<ImportedField>> ImportAsync(ImportContext context, CancellationToken cancellationToken)
    {
        if (!context.Wants("hba"))
        {
            return [];
        }
        var server = context.Session.Server;
        if (server.HbaFile is null)
        {
            context.Note("hba: the connection may not read hba_file (needs superuser or pg_read_all_settings): pg_hba.conf not imported");
            return [];
        }
        var path = HostFiles.ResolveLinks(server.HbaFile);
        var file = HbaFile.Parse(BoundHba.ReadBytes(path), server.Major);
        if (context.String("hba-block") is { } range)
        {
            file = await MarkBlockAsync(context, path, file, range, server.Major, cancellationToken);
        }
        var mode = file.Block is null ? HbaMode.Authoritative : HbaMode.ManagedBlock;
        var fileRules = file.RulesIn(file.Block);
        var comments = Comments(file, context.HostName, server.Major);
        var rules = new List<HbaRule>();
        var items = new List<YamlOutItem>();
        foreach (var r in fileRules)
        {
            var comment = comments.GetValueOrDefault(r.Line);
            if (comment is not null && CommentProblem(comment) is { } problem)
            {
                context.Note($"hba: the comment of line {r.Line} {problem}: left out");
                comment = null;
            }
            rules.Add(r.Rule with { Comment = comment });
            items.Add(new YamlOutItem(RuleOut(r.Rule, comment)));
        }
        foreach (var p in file.Problems.Where(p => mode == HbaMode.Authoritative || (p.Line > file.Block!.Value.Start && p.Line < file.Block!.Value.End)))
        {
            context.Note($"hba: line {p.Line} of {path} is not a rule pgstate reads (\"{TextSafety.Printable(p.Text)}\"): not imported — an apply would drop it");
        }
        foreach (var include in file.Includes)
        {
            context.Note(mode == HbaMode.Authoritative
                ? $"hba: line {include.Line} ({include.Kind} {include.Path}): include directives cannot be written in authoritative mode, and the rules they bring are not imported; keep them with --hba-block around the other lines"
                : $"hba: line {include.Line} ({include.Kind} {include.Path}) is kept as it is, outside pgstate's block; the rules it brings are not imported");
        }
        // What pgstate would write for exactly these rules: when it is the live file byte for byte, comments count as state.
        var section = new HbaSection(mode, Bottom: false, File: null, rules);
        var rendered = new BoundHba(context.HostName, section).Candidate(file);
        var same = rendered.AsSpan().SequenceEqual(file.Bytes);
        var entries = new List<YamlOutEntry>
        {
            new("mode", YamlOut.String(mode == HbaMode.Authoritative ? "authoritative" : "managed-block"),
                After: mode == HbaMode.Authoritative ? "pgstate owns the whole file: a rule not listed here is removed by apply" : $"only the lines between the markers (lines {file.Block!.Value.Start}-{file.Block!.Value.End} today)"),
        };
        if (!same)
        {
            entries.Add(new YamlOutEntry("compare", YamlOut.String("rules"),
                Above: ["the live file's comments and layout are not what pgstate writes: they are not drift, and the first", "apply that changes a rule writes the file from this list (comments above each rule kept)"]));
        }
        entries.Add(new YamlOutEntry("rules", new YamlOutSequence(items)));
        var above = new List<string> { $"{fileRules.Count} rule(s) of {path}, in order: the first rule that matches a connection decides" };
        return [new ImportedField(50, new YamlOutEntry("hba", new YamlOutMapping(entries), Above: above))];
    }

    /// <summary>A rule as a flow mapping: type, database, user, address, method, options, comment.</summary>
    internal static YamlOutMapping RuleOut(HbaRule rule, string? comment)
    {
        var entries = new List<YamlOutEntry>
        {
            new("type", YamlOut.String(rule.Type)),
            new("database", Names(rule.Databases, userField: false)),
            new("user", Names(rule.Users, userField: true)),
        };
        if (rule.Address is { } address)
        {
            entries.Add(new("address", YamlOut.String(address)));
        }
        entries.Add(new("method", YamlOut.String(rule.Method)));
        if (rule.Options.Count > 0)
        {
            entries.Add(new("options", new YamlOutMapping([.. rule.Options.Select(o => new YamlOutEntry(o.Key, YamlOut.String(o.Value)))], Flow: true)));
        }
        if (comment is not null)
        {
            entries.Add(new("comment", YamlOut.String(comment)));
        }
        return new YamlOutMapping(entries, Flow: true);
    }

    private static YamlOut Names(IReadOnlyList<HbaName> names, bool userField) =>
        names.Count == 1
            ? YamlOut.String(ManifestText(names[0], userField))
            : new YamlOutSequence([.. names.Select(n => new YamlOutItem(YamlOut.String(ManifestText(n, userField))))], Flow: true);

    /// <summary>
    /// A name as the manifest must write it so that <see cref="HbaName.FromManifest"/> reads it back the
    /// same: keywords, +group, @file and /regex as they are; a literal name that would read as one of
    /// those (all, +x, @x) or that is itself wrapped in double quotes goes in double quotes ("" for a quote).
    /// </summary>
    public static string ManifestText(HbaName name, bool userField) => name.Kind switch
    {
        HbaNameKind.Keyword or HbaNameKind.Regex => name.Value,
        HbaNameKind.Group => "+" + name.Value,
        HbaNameKind.File => "@" + name.Value,
        _ => HbaName.FromManifest(name.Value, userField) == name ? name.Value : "\"" + name.Value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"",
    };

    private static string? CommentProblem(string comment)
    {
        var trimmed = comment.Trim();
        if (trimmed.StartsWith(HbaFile.BlockBegin[2..], StringComparison.Ordinal) || trimmed.StartsWith(HbaFile.BlockEnd[2..], StringComparison.Ordinal))
        {
            return "starts like a managed-block marker";
        }
        if (comment.EndsWith('\\'))
        {
            return "ends with a backslash (PostgreSQL 16 would join the next line)";
        }
        return TextSafety.HasControl(comment) ? "holds a control character" : null;
    }

    /// <summary>
    /// The comment of each rule (by its first line): the comment lines just above it (a blank line,
    /// a rule or a marker ends a run; pgstate's own file header is not a comment of the first rule),
    /// joined with a space, plus a comment at the end of the rule's line.
    /// </summary>
    internal static Dictionary<int, string> Comments(HbaFile file, string hostName, int major)
    {
        var header = Encoding.UTF8.GetBytes(TemplateRenderer.Render(typeof(BoundHba).Assembly, "PgState.Modules.Hba.pg_hba.conf.sbn",
            new TemplateModel().Set("host", hostName).Set("rules", Array.Empty<TemplateModel>())));
        var skip = file.Bytes.AsSpan().StartsWith(header) ? HbaFile.Lines(header).Count : 0;
        var ruleLines = file.Rules.ToDictionary(r => r.Line);
        var lines = HbaFile.Lines(file.Bytes);
        var result = new Dictionary<int, string>();
        var pending = new List<string>();
        for (var i = skip; i < lines.Count; i++)
        {
            var text = HbaFile.Decode(lines[i]);
            if (i == 0 && text.StartsWith('\uFEFF'))
            {
                text = text[1..];
            }
            var trimmed = text.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith(HbaFile.BlockBegin, StringComparison.Ordinal) || trimmed.StartsWith(HbaFile.BlockEnd, StringComparison.Ordinal))
            {
                pending.Clear();
                continue;
            }
            if (trimmed.StartsWith('#'))
            {
                var body = trimmed[1..];
                pending.Add(body.StartsWith(' ') ? body[1..] : body);
                continue;
            }
            var parts = pending.Where(p => p.Trim().Length > 0).ToList();
            pending.Clear();
            if (ruleLines.TryGetValue(i + 1, out var rule) && TrailingComment(rule.Text) is { } trailing)
            {
                parts.Add(trailing);
            }
            if (parts.Count > 0)
            {
                result[i + 1] = string.Join(' ', parts);
            }
            while (major >= 16 && text.EndsWith('\\') && i + 1 < lines.Count)
            {
                text = HbaFile.Decode(lines[++i]);
            }
        }
        return result;
    }

    /// <summary>The text after a # outside double quotes, or null.</summary>
    private static string? TrailingComment(string line)
    {
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            if (line[i] == '"')
            {
                quoted = !quoted;
            }
            else if (line[i] == '#' && !quoted)
            {
                var text = line[(i + 1)..].Trim();
                return text.Length > 0 ? text : null;
            }
        }
        return null;
    }

    /// <summary>--hba-block FROM:TO: writes pgstate's markers around those lines (comments only: the server reads the same rules).</summary>
    private static async Task<HbaFile> MarkBlockAsync(ImportContext context, string path, HbaFile file, string range, int major, CancellationToken cancellationToken)
    {
        var m = BlockRange().Match(range);
        var lines = HbaFile.Lines(file.Bytes);
        if (!m.Success || !int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var from)
            || !int.TryParse(m.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var to) || from < 1 || to < from || to > lines.Count)
        {
            throw new PgStateException($"--hba-block {range}: give FROM:TO, two line numbers of {path} (it has {lines.Count} lines), FROM not after TO");
        }
        if (file.Block is { } existing)
        {
            if (existing.Start == from && existing.End == to)
            {
                return file;
            }
            throw new PgStateException($"--hba-block {range}: {path} already has pgstate's block at lines {existing.Start}-{existing.End}; import reads it without --hba-block");
        }
        var block = TemplateRenderer.Render(typeof(BoundHba).Assembly, "PgState.Modules.Hba.managed_block.sbn",
            new TemplateModel().Set("host", context.HostName).Set("rules", Array.Empty<TemplateModel>())).TrimEnd('\n').Split('\n');
        var marked = new List<byte[]>(lines);
        marked.Insert(to, Encoding.UTF8.GetBytes(block[^1]));
        marked.Insert(from - 1, Encoding.UTF8.GetBytes(block[0]));
        var endsWithNewline = file.Bytes.Length > 0 && file.Bytes[^1] == (byte)'\n';
        using var output = new MemoryStream();
        for (var i = 0; i < marked.Count; i++)
        {
            output.Write(marked[i]);
            if (i < marked.Count - 1 || endsWithNewline)
            {
                output.WriteByte((byte)'\n');
            }
        }
        var bytes = output.ToArray();
        var parsed = HbaFile.Parse(bytes, major);
        // The markers must not split a continued line, and the server must read exactly the same rules.
        if (parsed.Block is not { } b || b.Start != from || b.End != to + 2 || !parsed.Rules.Select(r => r.Rule.Key).SequenceEqual(file.Rules.Select(r => r.Rule.Key)))
        {
            throw new PgStateException($"--hba-block {range}: markers around lines {from}-{to} would change how {path} reads (a rule continued across the edge?); choose other lines");
        }
        await HostFiles.ReplaceAsync(path, bytes, cancellationToken);
        context.Note($"hba: wrote pgstate's block markers around lines {from}-{to} of {path} (two comment lines; the server reads the same rules, nothing was reloaded)");
        return parsed;
    }

    [GeneratedRegex(@"^([0-9]{1,7})[:-]([0-9]{1,7})\z")]
    private static partial Regex BlockRange();

    [GeneratedRegex(@"^# pg_hba\.conf for host (.+), written by pgstate from its manifest\.$")]
    private static partial Regex HeaderHost();

    [GeneratedRegex(@"^# BEGIN pgstate — rules managed by pgstate for host (.+); edit the manifest, not these lines$")]
    private static partial Regex BlockHost();
}
