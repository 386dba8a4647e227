using PgState.Engine.Diagnostics;

namespace PgState.Engine.Manifests;

public sealed record LoadResult(IReadOnlyList<HostManifest> Hosts, DiagnosticBag Diagnostics);

/// <summary>
/// Loads manifest files (or directories of *.yaml / *.yml), several documents per file, checks every
/// document against the schema, and reports all problems at once.
/// </summary>
public sealed class ManifestLoader(Func<string, string?> environment)
{
    public LoadResult Load(IEnumerable<string> paths)
    {
        var diagnostics = new DiagnosticBag();
        var hosts = new List<HostManifest>();
        var byName = new Dictionary<string, ManifestDocument>(StringComparer.Ordinal);
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
            var documents = new YamlTreeReader(file, environment, diagnostics).Read(text);
            foreach (var doc in documents)
            {
                if (doc.Root is not Newtonsoft.Json.Linq.JObject root)
                {
                    diagnostics.Error("PGS010", "a manifest document must be a mapping (apiVersion, kind, metadata, spec)", doc.Position);
                    continue;
                }
                var before = diagnostics.Items.Count;
                ManifestSchema.Validate(root, doc.Position, diagnostics);
                var document = new ManifestDocument(file, root, root.PositionOf() ?? doc.Position);
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
        }
        return new LoadResult(hosts, diagnostics);
    }

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
