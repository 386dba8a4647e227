using PgState.Engine.Diagnostics;

namespace PgState.Engine.Manifests;

public sealed record LoadResult(IReadOnlyList<HostManifest> Hosts, DiagnosticBag Diagnostics);

/// <summary>
/// Loads manifest files (or directories of *.yaml / *.yml), several documents per file, checks every
/// document against the schema, and reports all problems at once.
/// </summary>
public sealed class ManifestLoader(Func<string, string?> environment)
{
    /// <summary>Warms up schema loading in the background (call at process start).</summary>
    public static void Preload() => ManifestSchema.Preload();

    /// <summary>A YAML document read with positions, not yet checked against the schema.</summary>
    public sealed record ParsedDocument(string File, Newtonsoft.Json.Linq.JToken Root, SourcePosition Position);

    public sealed record ParseResult(IReadOnlyList<ParsedDocument> Documents, DiagnosticBag Diagnostics);

    public LoadResult Load(IEnumerable<string> paths) => Check(Parse(paths));

    /// <summary>Reads every file's YAML documents (cheap); Check does the schema and host checks.</summary>
    public ParseResult Parse(IEnumerable<string> paths)
    {
        var diagnostics = new DiagnosticBag();
        var documents = new List<ParsedDocument>();
        foreach (var file in ExpandPaths(paths, diagnostics))
        {
            string text;
            try
            {
                text = File.ReadAllText(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                diagnostics.Error("PGS007", $"cannot read manifest: {e.Message}", new SourcePosition(file, 1, 1));
                continue;
            }
            foreach (var doc in new YamlTreeReader(file, environment, diagnostics).Read(text))
            {
                documents.Add(new ParsedDocument(file, doc.Root!, doc.Position));
            }
        }
        return new ParseResult(documents, diagnostics);
    }

    /// <summary>
    /// The connection a parsed document asks for, before the schema check, so a caller can
    /// start connecting while the (slow to warm up) schema check runs. Null when unclear.
    /// </summary>
    public static ConnectionSpec? PeekConnection(ParsedDocument document)
    {
        try
        {
            return document.Root is Newtonsoft.Json.Linq.JObject root && root["spec"] is Newtonsoft.Json.Linq.JObject
                ? HostManifest.Bind(new ManifestDocument(document.File, root, document.Position)).Connection
                : null;
        }
        catch (Exception e) when (e is FormatException or InvalidCastException or ArgumentException or OverflowException or PgStateException)
        {
            return null;
        }
    }

    public static LoadResult Check(ParseResult parsed)
    {
        var diagnostics = parsed.Diagnostics;
        var hosts = new List<HostManifest>();
        var byName = new Dictionary<string, ManifestDocument>(StringComparer.Ordinal);
        foreach (var doc in parsed.Documents)
        {
            if (doc.Root is not Newtonsoft.Json.Linq.JObject root)
            {
                diagnostics.Error("PGS010", "a manifest document must be a mapping (apiVersion, kind, metadata, spec)", doc.Position);
                continue;
            }
            var before = diagnostics.Items.Count;
            ManifestSchema.Validate(root, doc.Position, diagnostics);
            var document = new ManifestDocument(doc.File, root, root.PositionOf() ?? doc.Position);
            if (diagnostics.Items.Skip(before).Any(d => d.Severity == Severity.Error))
            {
                continue;
            }
            if (byName.TryGetValue(document.HostName, out var first))
            {
                diagnostics.Error("PGS008",
                    $"host '{document.HostName}' is declared twice: here and at {((Newtonsoft.Json.Linq.JObject)first.Root["metadata"]!).KeyPositionOf("name")}",
                    ((Newtonsoft.Json.Linq.JObject)root["metadata"]!).KeyPositionOf("name"));
                continue;
            }
            byName[document.HostName] = document;
            hosts.Add(HostManifest.Bind(document));
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
                    diagnostics.Error("PGS007", "no *.yaml or *.yml manifest in this directory", new SourcePosition(path, 1, 1));
                }
                foreach (var f in files)
                {
                    yield return f;
                }
            }
            else if (File.Exists(path))
            {
                yield return path;
            }
            else
            {
                diagnostics.Error("PGS007", "no such file or directory", new SourcePosition(path, 1, 1));
            }
        }
    }
}
