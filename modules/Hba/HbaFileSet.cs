using PgState.Engine.Diagnostics;
using PgState.Engine.Host;

namespace PgState.Modules.Hba;

/// <summary>One file of pg_hba.conf's include tree: its path, parsed content, and its rules tagged with where they live.</summary>
public sealed record HbaSource(string Path, HbaFile File, IReadOnlyList<HbaFileRule> Rules, bool IsMain);

/// <summary>
/// pg_hba.conf and the files its include, include_if_exists and include_dir directives bring in
/// (PostgreSQL 16 and later), read the way the server reads them: a directive's rules take its
/// place in the order; a relative path is relative to the directory of the file that names it;
/// include_dir reads the directory's *.conf files (not those starting with a dot) in byte order;
/// a missing include_if_exists is skipped; nesting stops at the server's depth of 10. Rules of
/// included files carry their file's path (<see cref="HbaFileRule.File"/>), so a plan can say where
/// each lives; rules of the main file carry none, as before.
/// </summary>
public sealed class HbaFileSet
{
    /// <summary>PostgreSQL's CONF_FILE_MAX_DEPTH.</summary>
    public const int MaxDepth = 10;

    /// <summary>More files than any include tree a person writes; bounds what a hostile tree costs.</summary>
    public const int MaxFiles = 1000;

    private HbaFileSet(IReadOnlyList<HbaSource> files, IReadOnlyList<HbaFileRule> rules, IReadOnlyList<string> problems)
    {
        Files = files;
        Rules = rules;
        Problems = problems;
    }

    /// <summary>Every file read, the main file first, then in the order the server opens them.</summary>
    public IReadOnlyList<HbaSource> Files { get; }

    public HbaSource Main => Files[0];

    /// <summary>Every rule, in the order the server evaluates them.</summary>
    public IReadOnlyList<HbaFileRule> Rules { get; }

    /// <summary>Directives the server would fail on (a missing include file or directory, nesting too deep).</summary>
    public IReadOnlyList<string> Problems { get; }

    public bool HasIncludes => Files.Count > 1 || Files.Any(f => f.File.Includes.Count > 0);

    /// <summary>The file holding pgstate's managed block (the first one in reading order), or null.</summary>
    public HbaSource? BlockSource => Files.FirstOrDefault(f => f.File.Block is not null);

    /// <summary>Reads the tree from <paramref name="mainPath"/>; <paramref name="read"/> returns a file's bytes, or null when it does not exist.</summary>
    public static HbaFileSet Load(string mainPath, int major, Func<string, byte[]?> read, Func<byte[], HbaFile?>? parsed = null)
    {
        var files = new List<HbaSource>();
        var rules = new List<HbaFileRule>();
        var problems = new List<string>();
        var main = read(mainPath) ?? throw new PgStateException($"{mainPath} does not exist");
        Visit(mainPath, main, 0, major, read, parsed ?? (_ => null), files, rules, problems);
        return new HbaFileSet(files, rules, problems);
    }

    public HbaFileSet With(string path, byte[] bytes, int major) => With(path, HbaFile.Parse(bytes, major), major);

    /// <summary>The same tree with one file's bytes replaced (what the server would read after a write); files already parsed are not parsed again.</summary>
    public HbaFileSet With(string path, HbaFile replacement, int major)
    {
        var known = new Dictionary<byte[], HbaFile>(ReferenceEqualityComparer.Instance) { [replacement.Bytes] = replacement };
        foreach (var f in Files)
        {
            known.TryAdd(f.File.Bytes, f.File);
        }
        return Load(Main.Path, major, p => p == path ? replacement.Bytes : Files.FirstOrDefault(f => f.Path == p)?.File.Bytes ?? ReadOrNull(p),
            b => known.GetValueOrDefault(b));
    }

    private static byte[]? ReadOrNull(string path) => File.Exists(path) ? BoundHba.ReadBytes(path) : null;

    private static void Visit(string path, byte[] bytes, int depth, int major, Func<string, byte[]?> read, Func<byte[], HbaFile?> parsed,
        List<HbaSource> files, List<HbaFileRule> rules, List<string> problems)
    {
        var file = parsed(bytes) ?? HbaFile.Parse(bytes, major);
        var isMain = depth == 0;
        var tagged = isMain ? file.Rules : [.. file.Rules.Select(r => r with { File = path })];
        files.Add(new HbaSource(path, file, tagged, isMain));
        var directory = Path.GetDirectoryName(path) ?? "/";
        var ruleIndex = 0;
        foreach (var include in file.Includes)
        {
            while (ruleIndex < tagged.Count && tagged[ruleIndex].Line < include.Line)
            {
                rules.Add(tagged[ruleIndex++]);
            }
            var where = $"line {include.Line} of {path}";
            var target = Path.GetFullPath(include.Path, directory);
            if (depth + 1 > MaxDepth)
            {
                problems.Add($"{where}: {include.Kind} {include.Path} nests deeper than the server's {MaxDepth} levels");
                continue;
            }
            if (include.Kind == "include_dir")
            {
                if (!Directory.Exists(target))
                {
                    problems.Add($"{where}: include_dir {target} does not exist");
                    continue;
                }
                var names = Directory.EnumerateFiles(target)
                    .Select(Path.GetFileName)
                    .OfType<string>()
                    .Where(n => n.EndsWith(".conf", StringComparison.Ordinal) && !n.StartsWith('.'))
                    .Order(StringComparer.Ordinal);
                foreach (var name in names)
                {
                    VisitOne(Path.Combine(target, name), where, ifExists: true, depth, major, read, parsed, files, rules, problems);
                }
                continue;
            }
            VisitOne(target, where, include.Kind == "include_if_exists", depth, major, read, parsed, files, rules, problems);
        }
        while (ruleIndex < tagged.Count)
        {
            rules.Add(tagged[ruleIndex++]);
        }
    }

    private static void VisitOne(string target, string where, bool ifExists, int depth, int major, Func<string, byte[]?> read, Func<byte[], HbaFile?> parsed,
        List<HbaSource> files, List<HbaFileRule> rules, List<string> problems)
    {
        if (files.Count >= MaxFiles)
        {
            problems.Add($"{where}: more than {MaxFiles} included files; pgstate stops reading there");
            return;
        }
        // A symlinked file is known by its target: that is the file a write replaces and a rollback restores.
        target = File.Exists(target) ? HostFiles.ResolveLinks(target) : target;
        var bytes = read(target);
        if (bytes is null)
        {
            if (!ifExists)
            {
                problems.Add($"{where}: include {target} does not exist");
            }
            return;
        }
        Visit(target, bytes, depth + 1, major, read, parsed, files, rules, problems);
    }

    /// <summary>Where a rule lives, for plans and messages: "line 7", or "line 3 of /etc/…/app.conf".</summary>
    public static string Where(HbaFileRule rule) => rule.File is null ? $"line {rule.Line}" : $"line {rule.Line} of {rule.File}";

    /// <summary>A deterministic text of every file's content (the plan's fingerprint covers included files too).</summary>
    public string Digest() =>
        string.Join(';', Files.Select(f => $"{f.Path}:{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(f.File.Bytes))}"));

    /// <summary>The text of a line of one of the files (for quoting a server error), or null.</summary>
    public string? LineText(string? file, int line)
    {
        var source = file is null ? Main : Files.FirstOrDefault(f => f.Path == file);
        if (source is null)
        {
            return null;
        }
        var lines = HbaFile.Lines(source.File.Bytes);
        return line > 0 && line <= lines.Count ? HbaFile.Decode(lines[line - 1]).Trim() : null;
    }
}
