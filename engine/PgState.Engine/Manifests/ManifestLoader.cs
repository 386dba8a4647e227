using System.Text;
using PgState.Engine.Diagnostics;
using PgState.Engine.Host;

namespace PgState.Engine.Manifests;

internal sealed record LoadResult(IReadOnlyList<HostManifest> Hosts, DiagnosticBag Diagnostics);

/// <summary>
/// Loads manifest files (or directories of *.yaml / *.yml), several documents per file, checks every
/// document against the schema and for hostile values, and reports all problems at once. Only
/// regular files up to <see cref="MaxFileBytes"/> are read: a FIFO or /dev/zero is refused, not read.
/// </summary>
internal sealed class ManifestLoader(Func<string, string?> environment)
{
    public const int MaxFileBytes = 16 * 1024 * 1024;

    /// <summary>Warms the schema up on another core (JSON parse and regex construction).</summary>
    public static void Preload() => ThreadPool.UnsafeQueueUserWorkItem(_ =>
    {
        try
        {
            ManifestSchema.At();
        }
        catch (Exception)
        {
            // the main path reports it
        }
    }, null);

    /// <summary>A document read with positions, not yet checked against the schema.</summary>
    public sealed record ParsedDocument(string File, YamlNode Root, SourcePosition Position);

    public sealed record ParseResult(IReadOnlyList<ParsedDocument> Documents, DiagnosticBag Diagnostics);

    public LoadResult Load(IEnumerable<string> paths) => Check(Parse(paths));

    public ParseResult Parse(IEnumerable<string> paths)
    {
        var diagnostics = new DiagnosticBag();
        var documents = new List<ParsedDocument>();
        foreach (var file in ExpandPaths(paths, diagnostics))
        {
            if (ReadText(file, diagnostics) is not { } text)
            {
                continue;
            }
            foreach (var doc in new YamlTreeReader(file, environment, diagnostics).Read(text))
            {
                documents.Add(new ParsedDocument(file, doc.Root!, doc.Position));
            }
        }
        return new ParseResult(documents, diagnostics);
    }

    /// <summary>Reads a manifest's text: a regular file, bounded, valid UTF-8; else a diagnostic.</summary>
    internal static string? ReadText(string file, DiagnosticBag diagnostics)
    {
        var at = new SourcePosition(file, 1, 1);
        try
        {
            var stat = Posix.Stat(file);
            if (stat is null)
            {
                diagnostics.Error(DiagnosticCodes.NoSuchManifest, "no such file or directory", at);
                return null;
            }
            if (stat.Kind != PosixFileKind.Regular)
            {
                diagnostics.Error(DiagnosticCodes.ManifestNotRegular, $"not a regular file ({stat.Kind.ToString().ToLowerInvariant()}); pgstate reads manifests from regular files only", at);
                return null;
            }
            if (stat.Size > MaxFileBytes)
            {
                diagnostics.Error(DiagnosticCodes.ManifestTooLarge, $"the file is {stat.Size / (1024 * 1024)} MB; pgstate reads manifests up to {MaxFileBytes / (1024 * 1024)} MB", at);
                return null;
            }
            // What was opened is checked again (a FIFO swapped in after the stat does not hang the run); the buffer is the file's size.
            var buffer = HostFiles.ReadBounded(file, MaxFileBytes);
            var total = buffer.Length;
            if (total > 0 && buffer[0] == 0xEF && total >= 3 && buffer[1] == 0xBB && buffer[2] == 0xBF)
            {
                // A byte order mark (some Windows editors write one): YAML allows it at the start, it is not part of the first key.
                buffer = buffer[3..];
                total -= 3;
            }
            var nul = Array.IndexOf(buffer, (byte)0, 0, total);
            if (nul >= 0)
            {
                var line = 1 + buffer.AsSpan(0, nul).Count((byte)'\n');
                var column = nul - buffer.AsSpan(0, nul).LastIndexOf((byte)'\n');
                diagnostics.Error(DiagnosticCodes.CannotReadManifest, "a NUL byte: this is not a text file", new SourcePosition(file, line, column));
                return null;
            }
            try
            {
                return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer, 0, total);
            }
            catch (DecoderFallbackException e)
            {
                diagnostics.Error(DiagnosticCodes.CannotReadManifest, $"not valid UTF-8 (byte offset {e.Index}); manifests are UTF-8 text", at);
                return null;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            diagnostics.Error(DiagnosticCodes.CannotReadManifest, $"cannot read manifest: {e.Message}", at);
            return null;
        }
    }

    /// <summary>The connection a parsed document asks for, before the schema check, so a caller can
    /// start connecting while the rest of the checks run. Null when unclear.</summary>
    public static ConnectionSpec? PeekConnection(ParsedDocument document)
    {
        if (document.Root is not YamlMapping root || root.Mapping("spec")?.Mapping("connection") is not { } c)
        {
            return null;
        }
        var port = c.Scalar("port") is { } p && p.TryGetInt64(out var v) && v is > 0 and < 65536 ? (int)v : 5432;
        var timeout = c.Scalar("connectTimeout") is { } t && t.TryGetInt64(out var tv) && tv is > 0 and <= 600 ? (int)tv : 10;
        return new ConnectionSpec(c.String("host") ?? "/var/run/postgresql", port, c.String("user") ?? "postgres",
            c.String("database") ?? "postgres", c.Secret("password"), timeout);
    }

    public static LoadResult Check(ParseResult parsed)
    {
        var diagnostics = parsed.Diagnostics;
        var hosts = new List<HostManifest>();
        var byName = new Dictionary<string, ManifestDocument>(StringComparer.Ordinal);
        foreach (var doc in parsed.Documents)
        {
            if (doc.Root is not YamlMapping root)
            {
                diagnostics.Error(DiagnosticCodes.DocumentNotMapping, "a manifest document must be a mapping (apiVersion, kind, metadata, spec)", doc.Position);
                continue;
            }
            ManifestSchema.Validate(root, diagnostics);
            HostileValues.Check(root, diagnostics);
            var document = new ManifestDocument(doc.File, root, root.Position);
            if (root.Mapping("metadata")?.Scalar("name") is { Kind: ScalarKind.String } nameNode)
            {
                if (byName.TryGetValue(document.HostName, out var first))
                {
                    diagnostics.Error(DiagnosticCodes.HostDeclaredTwice,
                        $"host '{document.HostName}' is declared twice: here and at {first.Root.Mapping("metadata")!.Scalar("name")!.KeyOrPosition}",
                        nameNode.KeyOrPosition);
                    continue;
                }
                byName[document.HostName] = document;
            }
            if (root.Mapping("spec") is not null)
            {
                hosts.Add(HostManifest.Bind(document, diagnostics));
            }
        }
        return new LoadResult(hosts, diagnostics);
    }

    /// <summary>The manifest files that paths name (a directory stands for its *.yaml and *.yml).</summary>
    public static IReadOnlyList<string> Files(IEnumerable<string> paths) => [.. ExpandPaths(paths, new DiagnosticBag())];

    private static IEnumerable<string> ExpandPaths(IEnumerable<string> paths, DiagnosticBag diagnostics)
    {
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
            {
                var files = Directory.EnumerateFiles(path)
                    .Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal))
                    .Order(StringComparer.Ordinal)
                    .ToList();
                if (files.Count == 0)
                {
                    diagnostics.Error(DiagnosticCodes.EmptyManifestDirectory, "no *.yaml or *.yml manifest in this directory", new SourcePosition(path, 1, 1));
                }
                foreach (var f in files)
                {
                    yield return f;
                }
            }
            else
            {
                yield return path; // ReadText reports a missing or non-regular file
            }
        }
    }
}

/// <summary>
/// Values that no field may hold: control characters (a newline in a path becomes a new line in a
/// unit file, a cron file or pg_hba.conf) and values longer than any field needs. The fields that
/// may hold several lines are listed here.
/// </summary>
internal static class HostileValues
{
    public const int MaxScalarLength = 16 * 1024;

    /// <summary>Fields whose text may span lines (SQL of a drill probe).</summary>
    private static readonly string[] MultiLineFields = ["sql"];

    public static void Check(YamlNode node, DiagnosticBag diagnostics)
    {
        switch (node)
        {
            case YamlMapping m:
                foreach (var v in m.Values)
                {
                    if (HasControl(v.Key!, allowLines: false))
                    {
                        diagnostics.Error(DiagnosticCodes.ControlCharacter, $"the key '{TextSafety.Printable(v.Key!)}' in {(m.Path.Length == 0 ? "the document" : m.Path)} holds a control character", v.KeyOrPosition);
                    }
                    Check(v, diagnostics);
                }
                break;
            case YamlSequence s:
                foreach (var item in s.Items)
                {
                    Check(item, diagnostics);
                }
                break;
            case YamlScalar { Kind: ScalarKind.String } scalar:
                var multiLine = scalar.Key is { } key && MultiLineFields.Contains(key);
                if (HasControl(scalar.Text, multiLine))
                {
                    diagnostics.Error(DiagnosticCodes.ControlCharacter,
                        $"{scalar.Path}: \"{TextSafety.Printable(scalar.Text)}\" holds a control character (newline, tab, NUL, escape …); no field takes one", scalar.Position);
                }
                else if (scalar.Text.Length > MaxScalarLength)
                {
                    diagnostics.Error(DiagnosticCodes.ValueTooLong, $"{scalar.Path}: the value is {scalar.Text.Length:N0} characters long; pgstate accepts at most {MaxScalarLength:N0}", scalar.Position);
                }
                break;
        }
    }

    /// <summary>C0 and C1 controls, DEL, line and paragraph separators, lone surrogates and U+FFFE/FFFF.</summary>
    public static bool HasControl(string text, bool allowLines)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (allowLines && c is '\n' or '\t')
            {
                continue;
            }
            if (char.IsControl(c) || c is '\u2028' or '\u2029' or '\uFFFE' or '\uFFFF')
            {
                return true;
            }
            if (char.IsHighSurrogate(c) && (i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1])))
            {
                return true;
            }
            if (char.IsLowSurrogate(c) && (i == 0 || !char.IsHighSurrogate(text[i - 1])))
            {
                return true;
            }
        }
        return false;
    }
}
