using PgState.Engine.Diagnostics;
using PgState.Engine.Host;
using PgState.Engine.Manifests;
using PgState.Engine.Resources;

namespace PgState.Tests.Unit;

/// <summary>Manifests bound without a server: the module's section as the engine would hand it over.</summary>
internal static class TestData
{
    public static string RepositoryRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PgState.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("PgState.sln not found above the test binaries");
    }

    public const string Head = "apiVersion: pgstate/v1\nkind: PostgresHost\nmetadata: {name: t}\nspec:\n  connection: {host: /tmp, port: 5432}\n";

    /// <summary>Loads YAML text (checked against the schema) and returns its host and every diagnostic.</summary>
    public static (HostManifest? Host, DiagnosticBag Diagnostics) Load(string yaml, Func<string, string?>? environment = null)
    {
        var file = Path.Combine(Path.GetTempPath(), $"pgstate-unit-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(file, yaml);
        try
        {
            var result = new ManifestLoader(environment ?? (_ => null)).Load([file]);
            return (result.Hosts.FirstOrDefault(), result.Diagnostics);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Binds one module on a manifest; fails the test when loading or binding reports an error.</summary>
    public static T Bind<T>(IModule module, string yaml)
        where T : class
    {
        var (host, diagnostics) = Load(yaml);
        Assert.False(diagnostics.HasErrors, string.Join("\n", diagnostics.Items));
        var bound = module.Bind(new BindContext(host!, diagnostics, new FactBag(), HostPaths.System));
        Assert.False(diagnostics.HasErrors, string.Join("\n", diagnostics.Items));
        return Assert.IsAssignableFrom<T>(bound);
    }

    /// <summary>The diagnostics binding reports (schema, hostile values and the module's own checks).</summary>
    public static IReadOnlyList<Diagnostic> Problems(IModule module, string yaml)
    {
        var (host, diagnostics) = Load(yaml);
        if (host is not null)
        {
            module.Bind(new BindContext(host, diagnostics, new FactBag(), HostPaths.System));
        }
        return diagnostics.Sorted();
    }
}
